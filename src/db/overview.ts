import { type SQL, sql } from "drizzle-orm";
import { roundUsd } from "../usd.ts";
import type { Db } from "./client.ts";
import type { UsageTotals } from "./usage.ts";
import { latencyBucketCount, latencyPercentileMs } from "./latency-histogram.ts";
import { type RollupTable, rollupTables } from "./usage-rollups.ts";

/**
 * The dashboard's overview: usage over a range of UTC hours, as a series of hour or day buckets and broken down by
 * model, provider, type and (for admins) user. Read from the usage rollups only (usage-rollup-tables.ts), never
 * from the requests: whole days come from the daily tables, the hours of a partial day at either end of the range
 * from the hourly ones, the series from per-user or overall totals, and everyone's numbers from the tables already
 * summed over users. A year of a busy service is then a few thousand rows per query.
 *
 * Every request counts, deleted and failed ones included, as in GET /me/usage: over whole UTC days the totals
 * equal its totals.
 */

export type OverviewBucket = "hour" | "day";

export interface OverviewQuery {
  /** Inclusive; a whole UTC hour. */
  from: Date;
  /** Exclusive; a whole UTC hour. */
  to: Date;
  bucket: OverviewBucket;
  /** One user's numbers; everyone's when undefined. */
  userId?: string;
  /** Also break the numbers down by user (admins). */
  byUser: boolean;
}

/** GET /me/usage's sums, and what the rollups add to them. */
export interface OverviewFigures extends UsageTotals {
  /** Requests with status failed. */
  errors: number;
  /** 0..1; 0 without requests. */
  cacheHitRate: number;
  errorRate: number;
  /** From the rows' latency histogram (latency-histogram.ts states its resolution); null without requests. */
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
}

export interface Overview {
  totals: OverviewFigures;
  /** Every bucket that overlaps the range, oldest first, empty ones included; a bucket starts at its UTC hour or day. */
  series: Array<OverviewFigures & { start: Date }>;
  /** Most requests first, then by key. */
  byModel: Array<OverviewFigures & { key: string }>;
  byProvider: Array<OverviewFigures & { key: string }>;
  byType: Array<OverviewFigures & { key: string }>;
  /** Only when asked for; `email` is null for a user no longer stored. */
  byUser?: Array<OverviewFigures & { key: string; email: string | null }>;
}

export interface OverviewRepository {
  overview(query: OverviewQuery): Promise<Overview>;
}

const hourMs = 3_600_000;
const dayMs = 86_400_000;

/** One stretch of the range and the table that covers it. */
interface Part {
  table: RollupTable;
  from: Date;
  to: Date;
}

/**
 * The range split into whole UTC days (read from `daily`) and the hours before the first and after the last of
 * them (read from `hourly`).
 */
export function splitRange(from: Date, to: Date, hourly: RollupTable, daily: RollupTable): Part[] {
  const firstDay = Math.ceil(from.getTime() / dayMs) * dayMs;
  const endDay = Math.floor(to.getTime() / dayMs) * dayMs;
  if (firstDay >= endDay) return [{ table: hourly, from, to }];
  const parts: Part[] = [{ table: daily, from: new Date(firstDay), to: new Date(endDay) }];
  if (from.getTime() < firstDay) parts.push({ table: hourly, from, to: new Date(firstDay) });
  if (endDay < to.getTime()) parts.push({ table: hourly, from: new Date(endDay), to });
  return parts;
}

const summed = [
  "sum(requests)::bigint as requests",
  "sum(errors)::bigint as errors",
  "sum(cache_hits)::bigint as cache_hits",
  "sum(prompt_tokens)::bigint as prompt_tokens",
  "sum(completion_tokens)::bigint as completion_tokens",
  "sum(total_tokens)::bigint as total_tokens",
  "sum(cost_usd) as cost_usd",
  "min(latency_min_ms) as latency_min_ms",
  "max(latency_max_ms) as latency_max_ms",
  // double precision[] arrives as numbers from both drivers (bigint[] would be strings); exact below 2^53.
  `array[${Array.from({ length: latencyBucketCount }, (_, i) => `sum(latency_histogram[${i + 1}])`).join(",")}]::double precision[] as latency_histogram`,
].join(",");

/** The same columns of rows that need no summing. */
const unsummed =
  "requests,errors,cache_hits,prompt_tokens,completion_tokens,total_tokens,cost_usd,latency_min_ms,latency_max_ms," +
  "latency_histogram::double precision[] as latency_histogram";

/**
 * The rows of the parts as one union, of `userId` only when given; with `bucket`, each row's period truncated to
 * it, as epoch milliseconds (drizzle keeps timestamps as text, whose format differs between drivers).
 */
function unionOf(parts: readonly Part[], columns: string, userId: string | undefined, bucket?: OverviewBucket): SQL {
  const selects = parts.map(({ table, from, to }) => {
    const period = sql.raw(table.period);
    const bucketColumn =
      bucket === undefined
        ? sql``
        : sql`extract(epoch from date_trunc('${sql.raw(bucket)}', ${period}, 'UTC'))::float8 * 1000 as bucket, `;
    const ofUser = userId === undefined ? sql`` : sql`user_id = ${userId} and `;
    return sql`select ${bucketColumn}${sql.raw(columns)} from ${sql.raw(table.name)}
      where ${ofUser}${period} >= ${from.toISOString()}::timestamptz and ${period} < ${to.toISOString()}::timestamptz`;
  });
  return sql.join(selects, sql` union all `);
}

const measureList =
  "requests,errors,cache_hits,prompt_tokens,completion_tokens,total_tokens,cost_usd,latency_min_ms,latency_max_ms,latency_histogram";

interface SummedRow {
  requests: string | number | null;
  errors: string | number | null;
  cache_hits: string | number | null;
  prompt_tokens: string | number | null;
  completion_tokens: string | number | null;
  total_tokens: string | number | null;
  cost_usd: number | null;
  latency_min_ms: number | null;
  latency_max_ms: number | null;
  latency_histogram: number[] | null;
}

function figuresOf(row: SummedRow | undefined): OverviewFigures {
  const requests = Number(row?.requests ?? 0);
  const errors = Number(row?.errors ?? 0);
  const cacheHits = Number(row?.cache_hits ?? 0);
  const latency = {
    histogram: row?.latency_histogram ?? [],
    minMs: row?.latency_min_ms ?? 0,
    maxMs: row?.latency_max_ms ?? 0,
  };
  return {
    requests,
    promptTokens: Number(row?.prompt_tokens ?? 0),
    completionTokens: Number(row?.completion_tokens ?? 0),
    totalTokens: Number(row?.total_tokens ?? 0),
    costUsd: roundUsd(row?.cost_usd ?? 0),
    cacheHits,
    errors,
    cacheHitRate: requests === 0 ? 0 : cacheHits / requests,
    errorRate: requests === 0 ? 0 : errors / requests,
    latencyP50Ms: requests === 0 ? null : latencyPercentileMs(latency, 0.5),
    latencyP95Ms: requests === 0 ? null : latencyPercentileMs(latency, 0.95),
  };
}

const byRequests = (a: OverviewFigures & { key: string }, b: OverviewFigures & { key: string }) =>
  b.requests - a.requests || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * Rows of a raw statement (grouping sets and unions of several tables are beyond the query builder). Both drivers
 * here are node-postgres sessions (PGlite behind a pg-shaped client), which answer `{ rows }`; checked at run time.
 */
async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  const result: unknown = await db.execute(query);
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) {
    return result.rows as T[];
  }
  throw new Error("unexpected result shape from db.execute()");
}

/**
 * `beforeRead`: brings the rollups up to date (RollupFolder.foldNow), so an overview counts every request stored
 * before it was asked for.
 */
export function createOverviewRepository(db: Db, beforeRead: () => Promise<void>): OverviewRepository {
  async function series(query: OverviewQuery, hourly: RollupTable, daily: RollupTable) {
    // Hour buckets read the hourly totals, already one row per hour (of everyone, or of the one user): nothing to
    // add up. Day buckets add up whole days where they can, and the hours of the partial days at the edges.
    const byHour = query.bucket === "hour";
    const parts = byHour
      ? [{ table: hourly, from: query.from, to: query.to }]
      : splitRange(query.from, query.to, hourly, daily);
    const union = unionOf(parts, byHour ? unsummed : measureList, query.userId, query.bucket);
    const rows = await rowsOf<SummedRow & { bucket: number }>(
      db,
      byHour ? union : sql`select bucket, ${sql.raw(summed)} from (${union}) r group by bucket`,
    );
    const found = new Map(rows.map((row) => [Number(row.bucket), row]));
    const step = query.bucket === "hour" ? hourMs : dayMs;
    const points: Overview["series"] = [];
    for (let start = Math.floor(query.from.getTime() / step) * step; start < query.to.getTime(); start += step) {
      points.push({ start: new Date(start), ...figuresOf(found.get(start)) });
    }
    return points;
  }

  async function breakdowns(query: OverviewQuery, hourly: RollupTable, daily: RollupTable) {
    // grouping(): 0 for the grouped column, so (model) is 0b011, (provider) 0b101, (type) 0b110, () 0b111.
    const rows = await rowsOf<SummedRow & { grouping: number; model: string; provider: string; type: string }>(
      db,
      sql`select grouping(model, provider, type) as grouping, model, provider, type, ${sql.raw(summed)}
        from (${unionOf(splitRange(query.from, query.to, hourly, daily), `model,provider,type,${measureList}`, query.userId)}) r
        group by grouping sets ((model), (provider), (type), ())`,
    );
    const of = (grouping: number, key: (row: (typeof rows)[number]) => string) =>
      rows
        .filter((row) => Number(row.grouping) === grouping)
        .map((row) => ({ key: key(row), ...figuresOf(row) }))
        .sort(byRequests);
    return {
      totals: figuresOf(rows.find((row) => Number(row.grouping) === 0b111)),
      byModel: of(0b011, (row) => row.model),
      byProvider: of(0b101, (row) => row.provider),
      byType: of(0b110, (row) => row.type),
    };
  }

  async function everyUser(query: OverviewQuery) {
    const parts = splitRange(query.from, query.to, rollupTables.userTotalsHourly, rollupTables.userTotalsDaily);
    const rows = await rowsOf<SummedRow & { user_id: string; email: string | null }>(
      db,
      sql`select r.user_id, u.email, ${sql.raw(summed)}
        from (${unionOf(parts, `user_id,${measureList}`, undefined)}) r left join users u on u.id = r.user_id
        group by r.user_id, u.email`,
    );
    return rows.map((row) => ({ key: row.user_id, email: row.email, ...figuresOf(row) })).sort(byRequests);
  }

  async function emailOf(userId: string): Promise<string | null> {
    const [row] = await rowsOf<{ email: string }>(db, sql`select email from users where id = ${userId}`);
    return row?.email ?? null;
  }

  return {
    async overview(query) {
      await beforeRead();
      const { userId } = query;
      // The series needs no model, provider or type: it reads totals, per hour down to one row per bucket.
      const [seriesHourly, seriesDaily, hourly, daily] =
        userId === undefined
          ? [
              rollupTables.totalsHourly,
              rollupTables.everyoneDaily,
              rollupTables.everyoneHourly,
              rollupTables.everyoneDaily,
            ]
          : [rollupTables.userTotalsHourly, rollupTables.userTotalsDaily, rollupTables.hourly, rollupTables.daily];
      const [points, broken, users, email] = await Promise.all([
        series(query, seriesHourly, seriesDaily),
        breakdowns(query, hourly, daily),
        query.byUser && userId === undefined ? everyUser(query) : undefined,
        query.byUser && userId !== undefined ? emailOf(userId) : undefined,
      ]);
      const overview: Overview = { ...broken, series: points };
      if (query.byUser) {
        // One user's numbers: their totals are their only row (none without requests, like every breakdown).
        overview.byUser =
          users ??
          (userId !== undefined && broken.totals.requests > 0
            ? [{ key: userId, email: email ?? null, ...broken.totals }]
            : []);
      }
      return overview;
    },
  };
}
