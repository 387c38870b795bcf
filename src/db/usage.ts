import { and, eq, gte, lt, notInArray, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { requests } from "./schema.ts";
import { roundUsd } from "../usd.ts";

/**
 * Usage sums per user over a time range, read from the covering index `requests_user_usage_idx`
 * (user_id, created_at) INCLUDE (model, cached, prompt_tokens, completion_tokens, total_tokens, cost_usd): an
 * index-only scan of the user's rows in the range, never the table. Chosen over a daily roll-up table because it
 * is exact at any time of the day, costs the write path nothing (no second upsert per batch, no hot per-user-day
 * row), and a month of even a very busy user is a few hundred thousand index entries.
 *
 * Every request counts, deleted ones included (deleting drops the content, not the spend) and failed ones (they
 * were requests, with the tokens they used).
 */

export type UsageGroupBy = "day" | "model";

export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  cacheHits: number;
}

export interface UsageGroup extends UsageTotals {
  /** `YYYY-MM-DD` (UTC) for day, the model's name for model. */
  key: string;
}

export interface UsageRange {
  userId: string;
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
}

export interface UsageRepository {
  /** Sums per day or per model, ordered by day or by model name. */
  grouped(range: UsageRange, groupBy: UsageGroupBy): Promise<UsageGroup[]>;
  totals(range: UsageRange): Promise<UsageTotals>;
  /** The user's spend in USD in the UTC calendar month that starts at `monthStart`: seeds the budget counters. */
  monthSpendUsd(userId: string, monthStart: Date): Promise<number>;
}

const sums = {
  requests: sql<number>`count(*)::int`.mapWith(Number),
  promptTokens: sql<number>`coalesce(sum(${requests.promptTokens}), 0)::bigint`.mapWith(Number),
  completionTokens: sql<number>`coalesce(sum(${requests.completionTokens}), 0)::bigint`.mapWith(Number),
  totalTokens: sql<number>`coalesce(sum(${requests.totalTokens}), 0)::bigint`.mapWith(Number),
  costUsd: sql<number>`coalesce(sum(${requests.costUsd}), 0)`.mapWith(Number),
  cacheHits: sql<number>`(count(*) filter (where ${requests.cached}))::int`.mapWith(Number),
};

// The format is literal SQL, not a bound parameter, so GROUP BY 1 and the select list are the same expression.
const day = sql<string>`to_char(${requests.createdAt} at time zone 'UTC', 'YYYY-MM-DD')`;

// Queued and running requests have used nothing yet; they count once done, as the rollups count them.
const inRange = (range: UsageRange): SQL | undefined =>
  and(
    eq(requests.userId, range.userId),
    gte(requests.createdAt, range.from),
    lt(requests.createdAt, range.to),
    notInArray(requests.status, ["queued", "running"]),
  );

// Sums of many doubles carry float noise; stored costs have nine decimals, so sums are rounded to them too.
export function createUsageRepository(db: Db): UsageRepository {
  async function totals(range: UsageRange): Promise<UsageTotals> {
    const [row] = await db.select(sums).from(requests).where(inRange(range));
    return row
      ? { ...row, costUsd: roundUsd(row.costUsd) }
      : { requests: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, costUsd: 0, cacheHits: 0 };
  }

  return {
    async grouped(range, groupBy) {
      const rows = await groupedUsageQuery(db, range, groupBy);
      return rows.map((row) => ({ ...row, costUsd: roundUsd(row.costUsd) }));
    },

    totals,

    async monthSpendUsd(userId, monthStart) {
      const to = new Date(Date.UTC(monthStart.getUTCFullYear(), monthStart.getUTCMonth() + 1, 1));
      return (await totals({ userId, from: monthStart, to })).costUsd;
    },
  };
}

/** The statement behind `grouped`, exported so a test can EXPLAIN exactly what runs. */
export function groupedUsageQuery(db: Db, range: UsageRange, groupBy: UsageGroupBy) {
  const key = groupBy === "day" ? day : sql<string>`${requests.model}`;
  return db
    .select({ key: key.mapWith(String), ...sums })
    .from(requests)
    .where(inRange(range))
    .groupBy(sql`1`)
    .orderBy(sql`1`);
}

/** Adds up groups into totals (the groups of one range partition its rows). */
export function sumUsage(groups: readonly UsageTotals[]): UsageTotals {
  const total: UsageTotals = {
    requests: 0,
    promptTokens: 0,
    completionTokens: 0,
    totalTokens: 0,
    costUsd: 0,
    cacheHits: 0,
  };
  for (const group of groups) {
    total.requests += group.requests;
    total.promptTokens += group.promptTokens;
    total.completionTokens += group.completionTokens;
    total.totalTokens += group.totalTokens;
    total.costUsd += group.costUsd;
    total.cacheHits += group.cacheHits;
  }
  total.costUsd = roundUsd(total.costUsd);
  return total;
}
