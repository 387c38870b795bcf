/**
 * How the rollup tables (usage-rollup-tables.ts) are kept: the statement that stores a batch of requests passes the
 * rows it inserted to `usage_rollups_add()` (migration 0006), which upserts the batch's sums into every rollup
 * table. No write of its own per request, no second round trip, and the sums commit or fail with the rows they
 * count, so a batch that is retried, split or salvaged by the request writer is counted exactly once. Only rows
 * actually inserted are counted (the INSERT's RETURNING skips ids already stored).
 *
 * The upserts live in a PL/pgSQL function rather than in this statement: PL/pgSQL plans them once per connection,
 * where the same SQL sent with every batch was parsed and planned again each time (PGlite, which has no named
 * prepared statements, spent ~5 ms a batch on it). The function upserts each table's rows in key order, so two
 * instances storing batches at the same time lock shared rows (everyone's rows of the current hour and day) in the
 * same order and wait for each other instead of deadlocking.
 */

export type RollupDimension = "user_id" | "model" | "provider" | "type";

export interface RollupTable {
  name: string;
  period: "hour" | "day";
  /** The dimensions summed per row, besides the period. */
  dimensions: readonly RollupDimension[];
}

const allDimensions: readonly RollupDimension[] = ["user_id", "model", "provider", "type"];
const everyoneDimensions: readonly RollupDimension[] = ["model", "provider", "type"];

/**
 * The rollup tables by what they sum, for the queries that pick one (overview.ts): their columns are in
 * usage-rollup-tables.ts, their upserts in `usage_rollups_add()`.
 */
export const rollupTables = {
  hourly: {
    name: "usage_rollups",
    period: "hour",
    dimensions: allDimensions,
  },
  daily: {
    name: "usage_rollups_daily",
    period: "day",
    dimensions: allDimensions,
  },
  everyoneHourly: {
    name: "usage_rollups_everyone",
    period: "hour",
    dimensions: everyoneDimensions,
  },
  everyoneDaily: {
    name: "usage_rollups_everyone_daily",
    period: "day",
    dimensions: everyoneDimensions,
  },
  userTotalsHourly: {
    name: "usage_rollups_user_totals",
    period: "hour",
    dimensions: ["user_id"],
  },
  userTotalsDaily: {
    name: "usage_rollups_user_totals_daily",
    period: "day",
    dimensions: ["user_id"],
  },
  totalsHourly: { name: "usage_rollups_totals", period: "hour", dimensions: [] },
} as const satisfies Record<string, RollupTable>;

/** What `usage_rollups_add()` takes of each inserted request, in its parameters' order. */
const rolledUpColumns = [
  "created_at",
  "user_id",
  "model",
  "provider",
  "type",
  "status",
  "cached",
  "prompt_tokens",
  "completion_tokens",
  "total_tokens",
  "cost_usd",
  "latency_ms",
];

/**
 * One statement that runs `insertRequests` (an `insert into requests … on conflict (id) do nothing`, without a
 * RETURNING clause) and adds what it inserted to every rollup table. Its one row's `inserted` is the number of
 * requests rows inserted.
 */
export function withUsageRollups(insertRequests: string): string {
  return (
    `with inserted as (${insertRequests} returning ${rolledUpColumns.join(",")}) ` +
    `select usage_rollups_add(${rolledUpColumns.map((column) => `array_agg(${column})`).join(",")}) as inserted ` +
    "from inserted"
  );
}
