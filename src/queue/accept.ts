import { type BatchRecord, noCounts } from "../db/batches.ts";
import type { Database } from "../db/client.ts";
import {
  insertQueued,
  type NewQueuedRequest,
  type QueuedRequestRepository,
  unusedRecord,
} from "../db/queued-requests.ts";
import type { RequestRecord } from "../db/types.ts";
import { newId } from "../ids.ts";
import type { CacheMode, Caller } from "../requests/request-service.ts";
import type { CreateRequest } from "../requests/schemas.ts";
import type { JobQueue, NewRequestJob } from "./job-queue.ts";

export interface AcceptDeps {
  database: Database;
  queue: JobQueue;
  queued: QueuedRequestRepository;
  defaultChatModel: string;
  defaultEmbedModel: string;
  /** The provider that serves a model (the record's `provider` while it waits). */
  providerOf(model: string): string;
}

export interface AcceptedBatch {
  /** As accepted: every request queued (workers may have started some already; GET /batches/{id} says). */
  batch: BatchRecord;
  records: RequestRecord[];
}

/**
 * Accepting requests to run in the background: each is stored as `queued` and given a job, in one transaction, so
 * a request is accepted exactly when it will run. A user's requests go behind their own earlier ones and not behind
 * other users' (`priority`: the k-th unfinished request of a user has priority -k; the queue takes the highest
 * first, then the oldest), so one user's batch of a thousand does not hold back another user's one request.
 */
export function createAcceptance(deps: AcceptDeps) {
  function rowOf(caller: Caller, request: CreateRequest, batchId: string | null, createdAt: Date): NewQueuedRequest {
    const model = request.model ?? (request.type === "embed" ? deps.defaultEmbedModel : deps.defaultChatModel);
    return {
      id: newId("req"),
      userId: caller.user.id,
      apiKeyId: caller.key?.id ?? null,
      type: request.type,
      model,
      provider: deps.providerOf(model),
      input: request.input,
      options: request.options,
      metadata: request.metadata ?? {},
      batchId,
      createdAt,
    };
  }

  async function accept(
    caller: Caller,
    requests: readonly CreateRequest[],
    cacheMode: CacheMode,
    batch?: { id: string; metadata: Record<string, string> },
  ): Promise<{ createdAt: Date; records: RequestRecord[] }> {
    const createdAt = new Date();
    const rows = requests.map((request) => rowOf(caller, request, batch?.id ?? null, createdAt));
    const ahead = await deps.queued.unfinished(caller.user.id);
    const jobs: NewRequestJob[] = rows.map((row, i) => ({
      data: {
        requestId: row.id,
        cacheMode: requests[i]?.cache === false ? "bypass" : cacheMode,
        priority: -(ahead + i),
      },
    }));
    await deps.database.transaction(async (runner) => {
      await insertQueued(
        runner,
        rows,
        batch && {
          id: batch.id,
          userId: caller.user.id,
          apiKeyId: caller.key?.id ?? null,
          size: rows.length,
          metadata: batch.metadata,
          createdAt,
        },
      );
      await deps.queue.add(runner, jobs);
    });
    deps.queue.wake();
    return { createdAt, records: rows.map(queuedRecord) };
  }

  return {
    /** `POST /requests` with `Prefer: respond-async`: the request as accepted, status `queued`. */
    async one(caller: Caller, request: CreateRequest, cacheMode: CacheMode): Promise<RequestRecord> {
      const { records } = await accept(caller, [request], cacheMode);
      return records[0] as RequestRecord;
    },

    /** `POST /requests/batch`: every request validated already; all are accepted or none. */
    async batch(
      caller: Caller,
      requests: readonly CreateRequest[],
      cacheMode: CacheMode,
      metadata: Record<string, string>,
    ): Promise<AcceptedBatch> {
      const id = newId("bat");
      const { createdAt, records } = await accept(caller, requests, cacheMode, { id, metadata });
      const counts = { ...noCounts(), queued: records.length };
      const batch = {
        id,
        userId: caller.user.id,
        size: records.length,
        metadata,
        createdAt,
        cancelledAt: null,
        counts,
      };
      return { batch, records };
    },
  };
}

export type Acceptance = ReturnType<typeof createAcceptance>;

/** A queued request as the API shows it until it has run. */
const queuedRecord = (row: NewQueuedRequest): RequestRecord => unusedRecord(row, { status: "queued" });
