import type { StatementRunner } from "./client.ts";
import type { RequestStatus } from "./types.ts";
import { withUsageRollups } from "./usage-rollups.ts";

/** A batch (POST /requests/batch) with its requests counted by status. */
export interface BatchRecord {
  id: string;
  userId: string;
  size: number;
  metadata: Record<string, string>;
  createdAt: Date;
  cancelledAt: Date | null;
  counts: Record<RequestStatus, number>;
}

export interface BatchRepository {
  /** The user's batch (any user's when `userId` is undefined: admins); undefined when unknown or another user's. */
  get(userId: string | undefined, id: string): Promise<BatchRecord | undefined>;
  /**
   * Cancels what has not started: the batch's queued requests become `cancelled` (their jobs then find nothing to
   * run), counted in the usage rollups like any finished request. Running ones finish. A finished batch is left as
   * it is. Undefined when unknown.
   */
  cancel(userId: string, id: string): Promise<BatchRecord | undefined>;
}

/** Every status at 0: a batch's counts before any is added. */
export const noCounts = (): Record<RequestStatus, number> => ({
  queued: 0,
  running: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
});

const cancelledError = JSON.stringify({
  code: "cancelled",
  message: "the batch was cancelled before this request ran",
});

export function createBatchRepository(runner: StatementRunner): BatchRepository {
  async function get(userId: string | undefined, id: string): Promise<BatchRecord | undefined> {
    const { rows } = await runner.query({
      text: `select id, user_id, size, metadata, created_at, cancelled_at from batches
        where id = $1 and ($2::text is null or user_id = $2)`,
      values: [id, userId ?? null],
    });
    const row = rows[0] as
      | {
          id: string;
          user_id: string;
          size: number;
          metadata: Record<string, string>;
          created_at: Date | string;
          cancelled_at: Date | string | null;
        }
      | undefined;
    if (!row) return undefined;
    const counted = await runner.query({
      text: "select status, count(*)::int as n from requests where batch_id = $1 group by status",
      values: [id],
    });
    const counts = noCounts();
    for (const { status, n } of counted.rows as Array<{ status: RequestStatus; n: number }>) counts[status] = Number(n);
    return {
      id: row.id,
      userId: row.user_id,
      size: Number(row.size),
      metadata: row.metadata,
      createdAt: new Date(row.created_at),
      cancelledAt: row.cancelled_at === null ? null : new Date(row.cancelled_at),
      counts,
    };
  }

  return {
    get,
    async cancel(userId, id) {
      // A batch with nothing left to stop stays as it is: cancelling a finished batch changes nothing.
      const { rows } = await runner.query({
        text: `update batches set cancelled_at = coalesce(cancelled_at, now()) where id = $1 and user_id = $2
          and exists (select 1 from requests where batch_id = $1 and status in ('queued', 'running')) returning id`,
        values: [id, userId],
      });
      if (rows.length === 0) return get(userId, id);
      await runner.query({
        text: withUsageRollups(
          `update requests set status = 'cancelled', completed_at = now(), run_token = null, error = '${cancelledError}'::jsonb
            where batch_id = $1 and status = 'queued'`,
        ),
        values: [id],
      });
      return get(userId, id);
    },
  };
}
