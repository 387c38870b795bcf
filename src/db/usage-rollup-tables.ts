import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";
import type { RequestType } from "./types.ts";

/**
 * Usage of stored requests summed per UTC hour and per UTC day, kept up to date by the statement that stores each
 * batch of requests (usage-rollups.ts), so the dashboard's overview reads a few thousand rows instead of a year of
 * requests. Seven tables, each one way of summing the same requests (each sums to the same totals), so that every
 * part of an overview reads rows already summed as far as it needs:
 *
 * - `usage_rollups`, `usage_rollups_daily`: per user, model, provider and type: one user's breakdowns.
 * - `usage_rollups_everyone`, `usage_rollups_everyone_daily`: per model, provider and type, all users together:
 *   everyone's breakdowns (and series by day), which would otherwise add up every user's rows.
 * - `usage_rollups_user_totals`, `usage_rollups_user_totals_daily`: per user: one user's series, and by_user.
 * - `usage_rollups_totals`: all requests per hour: everyone's series by hour (31 days are 744 rows).
 *
 * Daily tables serve long ranges (a year is 365 rows per combination, not 8760); hourly ones serve hour buckets and
 * the partial days at the edges of a range. Rows are only ever added to: a deleted request keeps its usage.
 * Counts are bigint: an everyone-per-day row of a busy service passes 2^31 tokens in a day.
 */

const count = (name: string) => bigint(name, { mode: "number" }).notNull();

/** What every rollup row sums up; `errors` counts status failed, `cost_usd` counts an unknown price as 0. */
const measures = () => ({
  requests: count("requests"),
  errors: count("errors"),
  cacheHits: count("cache_hits"),
  promptTokens: count("prompt_tokens"),
  completionTokens: count("completion_tokens"),
  totalTokens: count("total_tokens"),
  costUsd: doublePrecision("cost_usd").notNull(),
  latencyMinMs: integer("latency_min_ms").notNull(),
  latencyMaxMs: integer("latency_max_ms").notNull(),
  /** Requests per latency bucket (latency-histogram.ts), added element-wise by `usage_histogram_add()`. */
  latencyHistogram: bigint("latency_histogram", { mode: "number" }).array().notNull(),
});

/** The UTC hour or day (its first instant), from `date_trunc(…, created_at, 'UTC')`. */
const start = (name: "hour" | "day") => timestamp(name, { withTimezone: true, mode: "date" }).notNull();

// No foreign key to users: the requests table already has one, and checking it again per upserted row buys nothing.
const dimensions = () => ({
  userId: text("user_id").notNull(),
  model: text("model").notNull(),
  provider: text("provider").notNull(),
  type: text("type").$type<RequestType>().notNull(),
});

// Keys lead with user_id where one user's range is read, with the time where everyone's is.
export const usageRollups = pgTable("usage_rollups", { hour: start("hour"), ...dimensions(), ...measures() }, (t) => [
  primaryKey({ name: "usage_rollups_pkey", columns: [t.userId, t.hour, t.model, t.provider, t.type] }),
]);

export const usageRollupsDaily = pgTable(
  "usage_rollups_daily",
  { day: start("day"), ...dimensions(), ...measures() },
  (t) => [primaryKey({ name: "usage_rollups_daily_pkey", columns: [t.userId, t.day, t.model, t.provider, t.type] })],
);

const { userId: _everyone, ...everyoneDimensions } = dimensions();

export const usageRollupsEveryone = pgTable(
  "usage_rollups_everyone",
  { hour: start("hour"), ...everyoneDimensions, ...measures() },
  (t) => [primaryKey({ name: "usage_rollups_everyone_pkey", columns: [t.hour, t.model, t.provider, t.type] })],
);

export const usageRollupsEveryoneDaily = pgTable(
  "usage_rollups_everyone_daily",
  { day: start("day"), ...everyoneDimensions, ...measures() },
  (t) => [primaryKey({ name: "usage_rollups_everyone_daily_pkey", columns: [t.day, t.model, t.provider, t.type] })],
);

export const usageRollupsUserTotals = pgTable(
  "usage_rollups_user_totals",
  { hour: start("hour"), userId: text("user_id").notNull(), ...measures() },
  (t) => [
    primaryKey({ name: "usage_rollups_user_totals_pkey", columns: [t.hour, t.userId] }),
    // One user's series; the key serves everyone's by_user over a range.
    index("usage_rollups_user_totals_user_idx").on(t.userId, t.hour),
  ],
);

export const usageRollupsUserTotalsDaily = pgTable(
  "usage_rollups_user_totals_daily",
  { day: start("day"), userId: text("user_id").notNull(), ...measures() },
  (t) => [
    primaryKey({ name: "usage_rollups_user_totals_daily_pkey", columns: [t.day, t.userId] }),
    index("usage_rollups_user_totals_daily_user_idx").on(t.userId, t.day),
  ],
);

export const usageRollupsTotals = pgTable("usage_rollups_totals", {
  hour: start("hour").primaryKey(),
  ...measures(),
});

/**
 * Batches of stored requests not yet added to the rollups: the statement that stores a batch of requests adds one
 * row here (the columns the rollups take, one array each) and nothing else, so the answer that waits on that commit
 * does not wait on seven upserts. `usage_rollups_fold()` later adds queued rows to the rollups and deletes them in
 * one transaction (rollup-folder.ts), so every request is counted once, whichever instance folds and whenever.
 */
export const usageRollupQueue = pgTable("usage_rollup_queue", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  createdAts: timestamp("created_ats", { withTimezone: true, mode: "date" }).array().notNull(),
  userIds: text("user_ids").array().notNull(),
  models: text("models").array().notNull(),
  providers: text("providers").array().notNull(),
  types: text("types").array().notNull(),
  statuses: text("statuses").array().notNull(),
  cachedFlags: boolean("cached_flags").array().notNull(),
  promptTokenCounts: integer("prompt_token_counts").array().notNull(),
  completionTokenCounts: integer("completion_token_counts").array().notNull(),
  totalTokenCounts: integer("total_token_counts").array().notNull(),
  // An unknown price is null in requests.cost_usd; the array keeps the null and the rollups count it as 0.
  costsUsd: doublePrecision("costs_usd").array().notNull(),
  latenciesMs: integer("latencies_ms").array().notNull(),
});
