import type { RequestRecord } from "./types.ts";

export interface RequestWriterOptions {
  /** Stores one batch in one statement; resolves once it is committed (RequestRepository.insertMany). */
  insertMany(records: readonly RequestRecord[]): Promise<unknown>;
  /** Most records per statement. Default 500. */
  maxBatchSize?: number;
  /** Called once per failed batch, besides rejecting that batch's writers (for a log line or a metric). */
  onError?: (error: unknown, batchSize: number) => void;
  /**
   * Whether a failed statement failed because of what its rows hold (a value the database refuses) rather than
   * because of the database (gone, full, shutting down). Such a batch is split in halves and each half written
   * again, down to the one row at fault, so that one request never fails the others that shared its statement.
   * Default: never (every failure fails the whole batch).
   */
  isRowError?: (error: unknown) => boolean;
  /**
   * For the one row a database refused: a reduced record to store in its place (its usage and cost kept), so a
   * paid call always leaves a record. Its writer then resolves. Undefined, or a reduced record refused too: rejects.
   */
  salvage?: (record: RequestRecord, error: unknown) => RequestRecord | undefined;
  /** Called when a row was stored reduced, for a log line. */
  onSalvaged?: (record: RequestRecord, error: unknown) => void;
}

export interface RequestWriter {
  /** Resolves once the record's batch has committed; rejects with that batch's error if it failed. */
  write(record: RequestRecord): Promise<void>;
  /** Resolves once everything written before the call has been committed or has failed. Never rejects. */
  flush(): Promise<void>;
  /** Flushes, then refuses new writes with `RequestWriterClosedError`. Idempotent. */
  close(): Promise<void>;
  /** Records written but not yet committed or failed: queued plus in flight. */
  pending(): number;
}

export class RequestWriterClosedError extends Error {
  constructor() {
    super("the request writer is closed: the service is shutting down");
    this.name = "RequestWriterClosedError";
  }
}

interface Entry {
  record: RequestRecord;
  resolve(): void;
  reject(error: unknown): void;
}

/** A failing hook must not stop the writer: the writers already have their outcome. */
function report(hook: () => void): void {
  try {
    hook();
  } catch {
    // nothing more to tell anyone
  }
}

/**
 * One batching writer for every request record, with no timer: when no insert is in flight the next one starts at
 * once with whatever is queued, and while one is in flight new records wait for it. At low load every record is a
 * batch of one (no added latency); under load each statement carries everything that arrived during the previous
 * one, up to `maxBatchSize`. Batches run one at a time, in write order.
 */
export function createRequestWriter(options: RequestWriterOptions): RequestWriter {
  const maxBatchSize = options.maxBatchSize ?? 500;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  }

  const queue: Entry[] = [];
  let inFlight = 0;
  let scheduled = false;
  let closed = false;
  // Settles (never rejects) with the last written record; batches are FIFO, so everything before it has settled too.
  let lastSettled: Promise<void> = Promise.resolve();

  function schedule(): void {
    if (scheduled || inFlight > 0 || queue.length === 0) return;
    scheduled = true;
    // A microtask, not a timer: writes made in the same synchronous run (a Promise.all, a burst of callbacks)
    // share the statement, and nothing waits for a clock.
    queueMicrotask(() => {
      scheduled = false;
      void runBatch();
    });
  }

  async function runBatch(): Promise<void> {
    const batch = queue.splice(0, maxBatchSize);
    if (batch.length === 0) return;
    inFlight = batch.length;
    // Writers hear of their outcome only once the batch is no longer in flight, so that pending() is right for
    // whoever resumes first.
    const outcomes: Array<() => void> = [];
    try {
      await commit(batch, outcomes);
    } finally {
      inFlight = 0;
      for (const settle of outcomes) settle();
      schedule();
    }
  }

  /** Writes the entries in one statement; a failure tied to the rows is narrowed down to the row at fault. */
  async function commit(entries: Entry[], outcomes: Array<() => void>): Promise<void> {
    try {
      await options.insertMany(entries.map((entry) => entry.record));
      for (const entry of entries) outcomes.push(entry.resolve);
      return;
    } catch (error) {
      if (!options.isRowError?.(error)) return fail(entries, error, outcomes);
      if (entries.length > 1) {
        // Each half is one statement again: one bad row among n costs about 2·log2(n) more statements.
        const middle = entries.length >>> 1;
        await commit(entries.slice(0, middle), outcomes);
        await commit(entries.slice(middle), outcomes);
        return;
      }
      const [entry] = entries as [Entry];
      const reduced = options.salvage?.(entry.record, error);
      if (!reduced) return fail(entries, error, outcomes);
      try {
        await options.insertMany([reduced]);
      } catch {
        return fail(entries, error, outcomes);
      }
      outcomes.push(entry.resolve);
      report(() => options.onSalvaged?.(entry.record, error));
    }
  }

  function fail(entries: Entry[], error: unknown, outcomes: Array<() => void>): void {
    for (const entry of entries) outcomes.push(() => entry.reject(error));
    report(() => options.onError?.(error, entries.length));
  }

  return {
    write(record) {
      if (closed) return Promise.reject(new RequestWriterClosedError());
      const written = new Promise<void>((resolve, reject) => {
        queue.push({ record, resolve, reject });
      });
      lastSettled = written.catch(() => {});
      schedule();
      return written;
    },

    flush() {
      return lastSettled;
    },

    close() {
      closed = true;
      return lastSettled;
    },

    pending() {
      return queue.length + inFlight;
    },
  };
}
