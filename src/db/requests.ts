import { and, desc, eq, getTableColumns, gte, isNull, lt, type SQL, sql } from "drizzle-orm";
import type { Db, StatementRunner } from "./client.ts";
import { clampPageLimit, cursorIdPattern, decodeCursor, encodeCursor, InvalidCursorError } from "./cursor.ts";
import { requests } from "./schema.ts";
import { toStorableJson, toStorableText } from "./storable-json.ts";
import type { RequestListQuery, RequestPage, RequestRecord } from "./types.ts";
import { withUsageRollups } from "./usage-rollups.ts";

// The HTTP layer maps it to 400 naming `cursor`; re-exported so callers of list() need only this module.
export { InvalidCursorError };

export interface RequestRepository {
  /**
   * Stores the records in one multi-row INSERT (more than `maxRowsPerStatement` rows: one per chunk). An id that
   * is already stored is skipped, so retrying a batch never duplicates, unless it is a queued or running request's:
   * then the record replaces it. Resolves to the number of rows inserted or finished. The same statement queues
   * those rows for the usage rollups (usage-rollups.ts).
   */
  insertMany(records: readonly RequestRecord[]): Promise<number>;
  /** The user's request; undefined when unknown, deleted, or another user's. */
  get(userId: string, id: string): Promise<RequestRecord | undefined>;
  /** Anyone's request (admins). */
  getAny(id: string): Promise<RequestRecord | undefined>;
  /**
   * The user's requests, newest first by (createdAt, id), deleted ones left out. `limit` is clamped to 1..100.
   * Throws `InvalidCursorError` for a cursor that no previous page returned.
   */
  list(query: RequestListQuery): Promise<RequestPage>;
  /**
   * Marks the request deleted and drops its input, options and output; usage, cost and error stay for accounting.
   * False when unknown, another user's, or already deleted.
   */
  softDelete(userId: string, id: string): Promise<boolean>;
}

/** PostgreSQL takes at most 65535 bind parameters per statement; a row here uses 26. */
const maxRowsPerStatement = 2000;

/**
 * created_at as ISO 8601 UTC with all six fractional digits. The cursor must carry the stored value exactly:
 * a millisecond Date would skip or repeat rows whose timestamps differ below the millisecond.
 */
const createdAtExact = sql<string>`to_char(${requests.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const exactTimestampPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** `writer`: where the INSERTs go (`Database.writer`); by default the pool underneath `db`. */
export function createRequestRepository(
  db: Db,
  writer: StatementRunner = (db as unknown as { $client: StatementRunner }).$client,
): RequestRepository {
  async function everyonesPage(conditions: SQL[], pageSize: number, cursor: string | undefined): Promise<RequestPage> {
    if (cursor !== undefined) {
      const [id] = decodeCursor(cursor, [cursorIdPattern]);
      if (id === undefined) throw new InvalidCursorError();
      conditions.push(lt(requests.id, id));
    }
    const rows = await db
      .select()
      .from(requests)
      .where(and(...conditions))
      .orderBy(desc(requests.id))
      .limit(pageSize + 1);
    const page = rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      data: page.map(toRequestRecord),
      nextCursor: rows.length > pageSize && last ? encodeCursor([last.id]) : null,
    };
  }

  return {
    async insertMany(records) {
      // Hand-built SQL: drizzle's insert builder spent more CPU per row than the rest of a request's pipeline.
      let inserted = 0;
      for (let start = 0; start < records.length; start += maxRowsPerStatement) {
        const batch = records.slice(start, start + maxRowsPerStatement);
        const params: unknown[] = [];
        const tuples: string[] = [];
        for (const record of batch) {
          const values = rowValues(record);
          const first = params.length;
          tuples.push(`(${values.map((_, i) => `$${first + i + 1}`).join(",")})`);
          for (const value of values) params.push(value);
        }
        const result = await writer.query({
          // Small batches (one row at low load) are named, so each connection parses and plans them once:
          // ~0.08 ms off every commit. Larger ones vary too much in size to be worth keeping.
          name: batch.length <= maxPreparedRows ? `arh_insert_requests_${batch.length}` : undefined,
          text: withUsageRollups(`insert into requests (${insertColumns}) values ${tuples.join(",")} ${onConflict}`),
          values: params,
        });
        inserted += (result.rows[0] as { inserted: number } | undefined)?.inserted ?? 0;
      }
      return inserted;
    },

    async get(userId, id) {
      const [row] = await db
        .select()
        .from(requests)
        .where(and(eq(requests.id, id), eq(requests.userId, userId), isNull(requests.deletedAt)));
      return row && toRequestRecord(row);
    },

    async list(query) {
      const pageSize = clampPageLimit(query.limit);
      const conditions: SQL[] = [isNull(requests.deletedAt)];
      if (query.userId !== undefined) conditions.push(eq(requests.userId, query.userId));
      if (query.type !== undefined) conditions.push(eq(requests.type, query.type));
      if (query.status !== undefined) conditions.push(eq(requests.status, query.status));
      if (query.model !== undefined) conditions.push(eq(requests.model, query.model));
      if (query.provider !== undefined) conditions.push(eq(requests.provider, query.provider));
      if (query.batchId !== undefined) conditions.push(eq(requests.batchId, query.batchId));
      if (query.from !== undefined) conditions.push(gte(requests.createdAt, query.from));
      if (query.to !== undefined) conditions.push(lt(requests.createdAt, query.to));
      // Everyone's requests page by id alone, newest first: ids are time-ordered, and the primary key serves the
      // order without an index on created_at that every insert would pay for.
      if (query.userId === undefined) return everyonesPage(conditions, pageSize, query.cursor);
      if (query.cursor !== undefined) {
        const [createdAt, id] = decodeCursor(query.cursor, [exactTimestampPattern, cursorIdPattern]);
        if (createdAt === undefined || id === undefined || !isRealTimestamp(createdAt)) throw new InvalidCursorError();
        // A row comparison, so the (user_id, created_at desc, id desc) index bounds the scan directly.
        conditions.push(sql`(${requests.createdAt}, ${requests.id}) < (${createdAt}::timestamptz, ${id})`);
      }
      const rows = await db
        .select({ ...getTableColumns(requests), createdAtExact })
        .from(requests)
        .where(and(...conditions))
        .orderBy(desc(requests.createdAt), desc(requests.id))
        .limit(pageSize + 1);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        data: page.map(toRequestRecord),
        nextCursor: rows.length > pageSize && last ? encodeCursor([last.createdAtExact, last.id]) : null,
      };
    },

    async getAny(id) {
      const [row] = await db
        .select()
        .from(requests)
        .where(and(eq(requests.id, id), isNull(requests.deletedAt)));
      return row && toRequestRecord(row);
    },

    async softDelete(userId, id) {
      const rows = await db
        .update(requests)
        .set({ deletedAt: sql`now()`, input: null, options: null, output: null })
        .where(and(eq(requests.id, id), eq(requests.userId, userId), isNull(requests.deletedAt)))
        .returning({ id: requests.id });
      return rows.length > 0;
    },
  };
}

/** Rejects well-shaped but impossible dates (2024-02-30) that PostgreSQL would refuse with an error. */
function isRealTimestamp(iso: string): boolean {
  const ms = Date.parse(iso);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 23) === iso.slice(0, 23);
}

/** Batches of up to this many rows are prepared statements (one per size and connection; PGlite ignores names). */
const maxPreparedRows = 8;

/** Content is escaped where PostgreSQL could not hold it (U+0000, lone surrogates); the schema's jsonb reads undo it. */
const json = (value: unknown) => (value === null || value === undefined ? null : toStorableJson(value));

/** The columns of one inserted row, in the order of `rowValues`. */
const insertColumns = [
  "id",
  "user_id",
  "api_key_id",
  "type",
  "source",
  "model",
  "provider",
  "status",
  "input",
  "options",
  "output",
  "error",
  "prompt_tokens",
  "completion_tokens",
  "total_tokens",
  "cost_usd",
  "cached",
  "latency_ms",
  "upstream_ms",
  "entry_ms",
  "retries",
  "attempts",
  "metadata",
  "created_at",
  "completed_at",
  "deleted_at",
].join(",");

/**
 * An id already stored is a retried batch (left as it is) or a queued request finishing (src/queue/): its queued or
 * running row takes the final record. The RETURNING that feeds the rollups sees a row only when it was inserted or
 * finished here, so a queued request counts once, when it is done.
 */
const onConflict = `on conflict (id) do update set (${insertColumns.replace(/^id,/, "")}) = (${insertColumns
  .replace(/^id,/, "")
  .split(",")
  .map((column) => `excluded.${column}`)
  .join(",")}) where requests.status in ('queued', 'running')`;

/** jsonb values go as JSON text, so that a text input such as "123" stays text. */
function rowValues(record: RequestRecord): unknown[] {
  return [
    record.id,
    record.userId,
    record.apiKeyId,
    record.type,
    record.source,
    // The model may be what the upstream named; a label it garbled must not cost the record.
    toStorableText(record.model),
    record.provider,
    record.status,
    json(record.input),
    json(record.options),
    json(record.output),
    json(record.error),
    record.promptTokens,
    record.completionTokens,
    record.totalTokens,
    record.costUsd,
    record.cached,
    record.latencyMs,
    record.upstreamMs,
    record.entryMs,
    record.retries,
    json(record.attempts),
    json(record.metadata),
    record.createdAt.toISOString(),
    record.completedAt?.toISOString() ?? null,
    record.deletedAt?.toISOString() ?? null,
  ];
}

function toRequestRecord(row: typeof requests.$inferSelect): RequestRecord {
  return {
    id: row.id,
    userId: row.userId,
    apiKeyId: row.apiKeyId,
    type: row.type,
    source: row.source,
    model: row.model,
    provider: row.provider,
    status: row.status,
    input: row.input,
    options: row.options,
    output: row.output,
    error: row.error,
    promptTokens: row.promptTokens,
    completionTokens: row.completionTokens,
    totalTokens: row.totalTokens,
    costUsd: row.costUsd,
    cached: row.cached,
    latencyMs: row.latencyMs,
    upstreamMs: row.upstreamMs,
    entryMs: row.entryMs,
    retries: row.retries,
    attempts: row.attempts ?? [],
    metadata: row.metadata,
    createdAt: row.createdAt,
    completedAt: row.completedAt,
    deletedAt: row.deletedAt,
  };
}

const int4 = (value: number) => (Number.isFinite(value) ? Math.min(2_147_483_647, Math.max(0, Math.round(value))) : 0);

/**
 * What is stored of a request whose row the database refused (request-writer.ts narrows a failed batch down to
 * it): who, when, which model, its status, usage and cost, so that a paid call is still accounted for; its input,
 * options, output and metadata are dropped, and its error says so.
 */
export function reducedRecord(record: RequestRecord): RequestRecord {
  return {
    id: record.id,
    userId: record.userId,
    apiKeyId: record.apiKeyId,
    type: record.type,
    source: record.source,
    model: toStorableText(record.model),
    provider: record.provider,
    status: record.status,
    input: null,
    options: null,
    output: null,
    error: {
      code: record.error?.code ?? "content_not_stored",
      message: "the database refused this request's content: its input, options and output were not stored",
    },
    promptTokens: int4(record.promptTokens),
    completionTokens: int4(record.completionTokens),
    totalTokens: int4(record.totalTokens),
    costUsd: record.costUsd !== null && Number.isFinite(record.costUsd) ? record.costUsd : null,
    cached: record.cached,
    latencyMs: int4(record.latencyMs),
    upstreamMs: record.upstreamMs === null ? null : int4(record.upstreamMs),
    entryMs: record.entryMs !== null && Number.isFinite(record.entryMs) ? record.entryMs : null,
    retries: int4(record.retries),
    attempts: [],
    metadata: {},
    createdAt: record.createdAt,
    completedAt: record.completedAt,
    deletedAt: record.deletedAt,
  };
}
