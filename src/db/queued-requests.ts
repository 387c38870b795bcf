import type { StatementRunner } from "./client.ts";
import { fromStoredJson, toStorableJson } from "./storable-json.ts";
import type { RequestRecord, RequestType } from "./types.ts";

/**
 * The rows of queued requests (`Prefer: respond-async`, POST /requests/batch): stored as `queued` when accepted,
 * `running` while a queue job runs them, and replaced by their final record through the request writer
 * (requests.ts: its upsert takes a queued or running row). The queue itself (src/queue/) holds only their ids.
 */

/** What is stored of a request when it is accepted. */
export interface NewQueuedRequest {
  id: string;
  userId: string;
  apiKeyId: string | null;
  type: RequestType;
  model: string;
  provider: string;
  input: unknown;
  options: Record<string, unknown>;
  metadata: Record<string, string>;
  batchId: string | null;
  createdAt: Date;
}

export interface NewBatch {
  id: string;
  userId: string;
  apiKeyId: string | null;
  size: number;
  metadata: Record<string, string>;
  createdAt: Date;
}

/** A queued request's row as a job needs it to run. */
export interface ClaimedRequest {
  id: string;
  userId: string;
  apiKeyId: string | null;
  type: RequestType;
  model: string;
  input: unknown;
  options: Record<string, unknown>;
  metadata: Record<string, string>;
  createdAt: Date;
  /** Whether its user had a webhook when it was claimed: if not, its end needs no outbox. */
  hasWebhooks: boolean;
}

const queuedColumns =
  "id, user_id, api_key_id, type, source, model, provider, status, input, options, metadata, batch_id, created_at";

/** Stores accepted requests as queued (and their batch), in the caller's transaction. No rollups: they count when done. */
export async function insertQueued(
  runner: StatementRunner,
  rows: readonly NewQueuedRequest[],
  batch?: NewBatch,
): Promise<void> {
  if (batch) {
    await runner.query({
      text: "insert into batches (id, user_id, api_key_id, size, metadata, created_at) values ($1, $2, $3, $4, $5, $6)",
      values: [
        batch.id,
        batch.userId,
        batch.apiKeyId,
        batch.size,
        JSON.stringify(batch.metadata),
        batch.createdAt.toISOString(),
      ],
    });
  }
  // One statement per 1,000 rows: 12 parameters each stays far below PostgreSQL's 65,535.
  for (let start = 0; start < rows.length; start += 1000) {
    const chunk = rows.slice(start, start + 1000);
    const values: unknown[] = [];
    const tuples = chunk.map((row) => {
      const first = values.length;
      values.push(
        row.id,
        row.userId,
        row.apiKeyId,
        row.type,
        row.model,
        row.provider,
        toStorableJson(row.input),
        toStorableJson(row.options),
        JSON.stringify(row.metadata),
        row.batchId,
        row.createdAt.toISOString(),
      );
      const p = (i: number) => `$${first + i}`;
      return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, 'native', ${p(5)}, ${p(6)}, 'queued', ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)})`;
    });
    await runner.query({ text: `insert into requests (${queuedColumns}) values ${tuples.join(", ")}`, values });
  }
}

export interface QueuedRequestRepository {
  /**
   * Takes the request for the job `token`: a queued request, or one this same job was running when its worker
   * died (the queue hands the job out again). Undefined when it is done, cancelled, or another job runs it.
   */
  claim(id: string, token: string): Promise<ClaimedRequest | undefined>;
  /**
   * Gives a claimed request back to the queue (its user's limits said wait), in the caller's transaction when
   * `runner` is given. False if it is no longer this job's.
   */
  release(id: string, token: string, runner?: StatementRunner): Promise<boolean>;
  /** Whether the request is done: completed, failed or cancelled (or gone). */
  isFinished(id: string): Promise<boolean>;
  /** Whether the job `token` ran the request to completion or failure. */
  finishedBy(id: string, token: string): Promise<boolean>;
  /** How many of the user's requests are queued or running: how far back their next one goes (fair ordering). */
  unfinished(userId: string): Promise<number>;
}

export function createQueuedRequestRepository(runner: StatementRunner): QueuedRequestRepository {
  return {
    async claim(id, token) {
      const { rows } = await runner.query({
        text: `update requests set status = 'running', run_token = $2
          where id = $1 and (status = 'queued' or (status = 'running' and run_token = $2))
          returning id, user_id, api_key_id, type, model, input, options, metadata, created_at,
            exists (select 1 from webhooks w where w.user_id = requests.user_id) as has_webhooks`,
        values: [id, token],
      });
      const row = rows[0] as
        | {
            id: string;
            user_id: string;
            api_key_id: string | null;
            type: RequestType;
            model: string;
            input: unknown;
            options: Record<string, unknown> | null;
            metadata: Record<string, string>;
            created_at: Date | string;
            has_webhooks: boolean;
          }
        | undefined;
      if (!row) return undefined;
      return {
        id: row.id,
        userId: row.user_id,
        apiKeyId: row.api_key_id,
        type: row.type,
        model: row.model,
        input: fromStoredJson(row.input),
        options: fromStoredJson(row.options ?? {}),
        metadata: row.metadata,
        createdAt: new Date(row.created_at),
        hasWebhooks: row.has_webhooks === true,
      };
    },

    async release(id, token, inTransaction = runner) {
      const { rows } = await inTransaction.query({
        text: `update requests set status = 'queued', run_token = null
          where id = $1 and status = 'running' and run_token = $2 returning id`,
        values: [id, token],
      });
      return rows.length > 0;
    },

    async isFinished(id) {
      const { rows } = await runner.query({ text: "select status from requests where id = $1", values: [id] });
      const status = (rows[0] as { status: string } | undefined)?.status;
      return status !== "queued" && status !== "running";
    },

    async finishedBy(id, token) {
      const { rows } = await runner.query({
        text: "select 1 from requests where id = $1 and run_token = $2 and status in ('completed', 'failed')",
        values: [id, token],
      });
      return rows.length > 0;
    },

    async unfinished(userId) {
      const { rows } = await runner.query({
        text: "select count(*)::int as n from requests where user_id = $1 and status in ('queued', 'running')",
        values: [userId],
      });
      return Number((rows[0] as { n: number } | undefined)?.n ?? 0);
    },
  };
}

/** A queued request's record before anything was used: as accepted (`queued`), or as one that could not run. */
export function unusedRecord(
  request: Pick<
    NewQueuedRequest,
    "id" | "userId" | "apiKeyId" | "type" | "model" | "input" | "options" | "metadata"
  > & {
    provider: string;
    createdAt: Date;
  },
  outcome: { status: "queued" } | { status: "failed"; code: string; message: string },
): RequestRecord {
  const failed = outcome.status === "failed";
  return {
    id: request.id,
    userId: request.userId,
    apiKeyId: request.apiKeyId,
    type: request.type,
    source: "native",
    model: request.model,
    provider: request.provider,
    status: outcome.status,
    input: request.input,
    options: request.options,
    output: null,
    error: failed ? { code: outcome.code, message: outcome.message } : null,
    promptTokens: 0,
    completionTokens: 0,
    totalTokens: 0,
    // Nothing was called: a failure costs 0; a queued request has no cost yet.
    costUsd: failed ? 0 : null,
    cached: false,
    latencyMs: 0,
    upstreamMs: null,
    entryMs: null,
    retries: 0,
    attempts: [],
    metadata: request.metadata,
    createdAt: request.createdAt,
    completedAt: failed ? new Date() : null,
    deletedAt: null,
  };
}

/** The record a queued request that cannot run gets (its user was disabled meanwhile): failed, nothing used. */
export function unrunnableRecord(claimed: ClaimedRequest, code: string, message: string): RequestRecord {
  return unusedRecord({ ...claimed, provider: "none" }, { status: "failed", code, message });
}
