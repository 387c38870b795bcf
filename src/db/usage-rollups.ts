/**
 * How the rollup tables (usage-rollup-tables.ts) are kept, in two steps:
 *
 * 1. The statement that stores a batch of requests also queues what it inserted: one row in `usage_rollup_queue`
 *    holding the rolled-up columns as arrays. One plain insert per batch, committed or failed with the rows it
 *    counts, so a batch that is retried, split or salvaged by the request writer is queued exactly once (the
 *    INSERT's RETURNING skips ids already stored). The answer waits on that commit, and on nothing more.
 * 2. `usage_rollups_fold()` (rollup-folder.ts) adds the queued batches to every rollup table through
 *    `usage_rollups_add()` and deletes them in the same transaction, off the answer's path: soon after a batch is
 *    stored, at start (what a stopped instance left), and before an overview is read, so an overview counts every
 *    stored request.
 *
 * Folding many batches at once also writes each rollup row once per fold instead of once per batch, and instances
 * no longer take turns on everyone's rows of the current hour while answering.
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

/** What the queue holds of each inserted request (its arrays), in `usage_rollups_add()`'s parameters' order. */
const rolledUpColumns = [
  ["created_at", "created_ats"],
  ["user_id", "user_ids"],
  ["model", "models"],
  ["provider", "providers"],
  ["type", "types"],
  ["status", "statuses"],
  ["cached", "cached_flags"],
  ["prompt_tokens", "prompt_token_counts"],
  ["completion_tokens", "completion_token_counts"],
  ["total_tokens", "total_token_counts"],
  ["cost_usd", "costs_usd"],
  ["latency_ms", "latencies_ms"],
] as const;

/**
 * One statement that runs `statement` (an INSERT or UPDATE of requests without a RETURNING clause: the request
 * writer's insert, a batch's cancellation) and queues the rows it wrote for the rollups. It returns one row, whose `inserted` is the number
 * of requests rows inserted, when it inserted any, and no row otherwise.
 */
export function withUsageRollups(statement: string): string {
  return (
    `with inserted as (${statement} returning ${rolledUpColumns.map(([column]) => column).join(",")}) ` +
    `insert into usage_rollup_queue (${rolledUpColumns.map(([, queued]) => queued).join(",")}) ` +
    `select ${rolledUpColumns.map(([column]) => `array_agg(${column})`).join(",")} from inserted ` +
    "having count(*) > 0 returning cardinality(created_ats) as inserted"
  );
}

/** Folds at most this many queued batches per transaction, so one fold never holds the rollups for long. */
export const foldBatchLimit = 200;

/** The statement that folds queued batches; its one row's `taken` is how many (`foldBatchLimit`: maybe more). */
export const foldStatement = `select usage_rollups_fold(${foldBatchLimit}) as taken`;
