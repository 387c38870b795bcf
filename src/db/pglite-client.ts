/**
 * The main thread's side of PGlite in a worker thread (pglite-worker.ts): a client shaped like a one-connection pg
 * Pool, so drizzle's node-postgres driver runs on it unchanged. drizzle-orm/pglite cannot: it imports PGlite itself,
 * and PGlite must load in the worker only.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { Results } from "@electric-sql/pglite";
import type { PgliteWorkerData, SerializedError, WorkerReply, WorkerRequest } from "./pglite-worker.ts";

/** The part of pg's QueryConfig that drizzle's node-postgres session passes to `query`. */
export interface PgliteQueryConfig {
  text: string;
  values?: unknown[];
  rowMode?: "array";
  /** pg's type parsers. Only its presence counts: drizzle passes them to keep date and time types as text. */
  types?: unknown;
  name?: string;
}

export type PgliteQuery = string | PgliteQueryConfig;

export type PgliteResults<Row = Record<string, unknown>> = Results<Row>;

/** The connection while leased by `connect()`: nothing else reaches PGlite until `release()`. */
export interface PgliteConnection {
  query<Row = Record<string, unknown>>(query: PgliteQuery, params?: unknown[]): Promise<PgliteResults<Row>>;
  release(): void;
}

export interface PgliteWorkerOptions {
  /** The worker died after starting (crash, exit); every query fails from then on. Default: ignored. */
  onError?: (error: Error) => void;
}

/**
 * The OIDs drizzle's pg sessions keep as the text PostgreSQL sent (its type parsers return them unchanged):
 * timestamp, timestamptz, interval, date, numeric[], timestamp[], timestamptz[], interval[], date[].
 */
const drizzleTextTypes: readonly number[] = [1114, 1184, 1186, 1082, 1231, 1115, 1185, 1187, 1182];

/** Running from source (`.ts` under tsx) rather than compiled (`.js`): the worker module is next to this one. */
const fromSource = import.meta.url.endsWith(".ts");
const workerFile = new URL(`./pglite-worker.${fromSource ? "ts" : "js"}`, import.meta.url);

/**
 * Starts PGlite on `dataDir` in a worker thread; resolves once it is open. On the first start the database cluster
 * is created in a worker of its own, ended once done: creating it grows PGlite's WebAssembly memory to ~700 MB,
 * which a worker keeps until it ends, where opening an existing cluster takes ~160 MB.
 */
export async function openPgliteWorker(dataDir: string, options: PgliteWorkerOptions = {}): Promise<PgliteWorkerPool> {
  if (!existsSync(join(dataDir, "PG_VERSION"))) await (await PgliteWorkerPool.start(pgliteWorker(dataDir))).close();
  return PgliteWorkerPool.start(pgliteWorker(dataDir), options);
}

function pgliteWorker(dataDir: string): Worker {
  const workerData: PgliteWorkerData = { dataDir };
  if (!fromSource) return new Worker(workerFile, { workerData });
  // Node 20 does not apply the hooks of `--import tsx` to a worker's modules, though the worker inherits the flag
  // (nodejs/node#47747): a bootstrap registers tsx in the worker, then imports the TypeScript module.
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(workerFile.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** A request before its id is assigned (distributed over the union's members). */
type WithoutId<Request> = Request extends unknown ? Omit<Request, "id"> : never;
type RequestBody = WithoutId<WorkerRequest>;

interface Starting {
  resolve(): void;
  reject(error: Error): void;
}

interface InFlight {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** Something waiting for the connection: a query to send, or a lease to take. */
interface Waiter {
  run(): void;
  fail(error: Error): void;
}

/**
 * PGlite in a worker, seen as a pg Pool of one connection. Queries are sent in call order and the worker runs them
 * in that order. `connect()` leases the connection exclusively: drizzle runs each transaction on a leased
 * connection, so another caller's query cannot land between its BEGIN and COMMIT; it waits for `release()`.
 *
 * The class name must contain "Pool": drizzle's node-postgres session looks for it to lease a connection per
 * transaction (test/pglite-worker.test.ts checks that transactions stay exclusive).
 */
export class PgliteWorkerPool {
  readonly #worker: Worker;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #inFlight = new Map<number, InFlight>();
  readonly #waiting: Waiter[] = [];
  #nextId = 1;
  #leased = false;
  /** Until the worker reports PGlite open. */
  #starting: Starting | undefined;
  /** Set once the worker is gone (closed or died): every request fails with it. */
  #gone: Error | undefined;
  #closing: Promise<void> | undefined;

  /** Wraps a worker running pglite-worker.ts (or one speaking its protocol); resolves once it is ready. */
  static start(worker: Worker, options: PgliteWorkerOptions = {}): Promise<PgliteWorkerPool> {
    return new Promise((resolve, reject) => {
      const pool: PgliteWorkerPool = new PgliteWorkerPool(worker, options, {
        resolve: () => resolve(pool),
        reject,
      });
    });
  }

  private constructor(worker: Worker, options: PgliteWorkerOptions, starting: Starting) {
    this.#worker = worker;
    this.#onError = options.onError;
    this.#starting = starting;
    worker.on("message", (reply: WorkerReply) => this.#onReply(reply));
    worker.on("error", (error) => this.#die(goneError(`PGlite worker failed: ${error.message}`, error)));
    worker.on("messageerror", (error) => {
      this.#die(goneError(`PGlite worker sent a message that could not be read: ${error.message}`, error));
      void worker.terminate();
    });
    worker.on("exit", (code) => this.#die(goneError(`PGlite worker exited (exit code ${code})`)));
  }

  /** True once `close()` was called or the worker died: queries fail from then on. */
  get closed(): boolean {
    return this.#closing !== undefined || this.#gone !== undefined;
  }

  /** One statement, run once the connection is free (not leased). */
  query<Row = Record<string, unknown>>(query: PgliteQuery, params?: unknown[]): Promise<PgliteResults<Row>> {
    return this.#whenFree(() => this.#send(queryRequest(query, params)));
  }

  /**
   * Several statements in one string, without parameters, as PostgreSQL's simple query protocol runs them (`query`
   * takes one statement): what a library's schema script sends. The results of each statement, in order.
   */
  exec(sql: string): Promise<PgliteResults[]> {
    return this.#whenFree(() => this.#send({ op: "exec", sql }));
  }

  /** Leases the connection once the queries and leases asked for earlier are through. */
  connect(): Promise<PgliteConnection> {
    return this.#whenFree(() => {
      this.#leased = true;
      return Promise.resolve(this.#lease());
    });
  }

  /**
   * Closes PGlite once the work asked for earlier is through (a leased connection included), then ends the worker.
   * Idempotent; a worker that died already has nothing left to close.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    let failure: unknown;
    if (this.#gone === undefined) {
      try {
        await this.#enqueue(() => this.#send({ op: "close" }));
      } catch (error) {
        // A worker that died meanwhile has nothing left to close; PGlite failing to close is worth reporting.
        if (this.#gone === undefined) failure = error;
      }
    }
    this.#die(closedError());
    await this.#worker.terminate();
    if (failure !== undefined) throw failure;
  }

  /** Runs `task` once the connection is free; refuses new work once closing. */
  #whenFree<T>(task: () => Promise<T>): Promise<T> {
    if (this.#gone !== undefined) return Promise.reject(this.#gone);
    if (this.#closing !== undefined) return Promise.reject(closedError());
    return this.#enqueue(task);
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = { run: () => task().then(resolve, reject), fail: reject };
      if (!this.#leased && this.#waiting.length === 0) waiter.run();
      else this.#waiting.push(waiter);
    });
  }

  #lease(): PgliteConnection {
    let released = false;
    return {
      query: <Row>(query: PgliteQuery, params?: unknown[]) =>
        released
          ? Promise.reject(new Error("PGlite connection used after release()"))
          : this.#send<PgliteResults<Row>>(queryRequest(query, params)),
      release: () => {
        if (released) return;
        released = true;
        this.#leased = false;
        // Send what queued up meanwhile, in order, up to the next lease.
        while (!this.#leased && this.#waiting.length > 0) this.#waiting.shift()?.run();
      },
    };
  }

  #send<T>(body: RequestBody): Promise<T> {
    if (this.#gone !== undefined) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      try {
        this.#worker.postMessage({ ...body, id } as WorkerRequest);
      } catch (error) {
        // A parameter that cannot be cloned (a function, say) fails this query alone.
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      this.#inFlight.set(id, { resolve: resolve as (result: unknown) => void, reject });
      // Keep the process alive while the worker owes an answer, and only then (see #onReply).
      if (this.#inFlight.size === 1) this.#worker.ref();
    });
  }

  #onReply(reply: WorkerReply): void {
    if (reply.type === "ready") {
      this.#starting?.resolve();
      this.#starting = undefined;
      if (this.#inFlight.size === 0) this.#worker.unref();
      return;
    }
    const inFlight = this.#inFlight.get(reply.id);
    if (inFlight === undefined) return;
    this.#inFlight.delete(reply.id);
    // An idle worker must not keep the process alive: a caller that never closes the database can still exit.
    if (this.#inFlight.size === 0 && this.#starting === undefined) this.#worker.unref();
    if (reply.type === "result") inFlight.resolve(reply.result);
    else inFlight.reject(toError(reply.error));
  }

  /** The worker is gone: everything sent or waiting fails, and so does everything asked later. */
  #die(error: Error): void {
    if (this.#gone !== undefined) return;
    this.#gone = error;
    for (const inFlight of this.#inFlight.values()) inFlight.reject(error);
    this.#inFlight.clear();
    for (const waiter of this.#waiting.splice(0)) waiter.fail(error);
    if (this.#starting !== undefined) {
      this.#starting.reject(error);
      this.#starting = undefined;
    } else if (this.#closing === undefined) {
      // Unexpected: not the end of close(). Once started, nobody but onError hears of it until the next query.
      this.#onError?.(error);
    }
  }
}

function queryRequest(query: PgliteQuery, params: unknown[] | undefined): RequestBody {
  if (typeof query === "string")
    return { op: "query", sql: query, params: params ?? [], rowMode: "object", rawTypes: [] };
  return {
    op: "query",
    sql: query.text,
    params: params ?? query.values ?? [],
    rowMode: query.rowMode ?? "object",
    rawTypes: query.types === undefined ? [] : drizzleTextTypes,
  };
}

/**
 * The codes PostgreSQL reports when the server shuts down (57P01) or crashed (57P02): `isDatabaseUnavailable`
 * recognises them, so requests are refused with 503 instead of failing with 500.
 */
function closedError(): Error {
  return Object.assign(new Error("PGlite is closed"), { code: "57P01" });
}

function goneError(message: string, cause?: Error): Error {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code: "57P02" });
}

/** A real Error again, with PostgreSQL's fields (code, detail, constraint, …) as own properties like PGlite's. */
function toError(serialized: SerializedError): Error {
  const error = Object.assign(new Error(serialized.message), serialized.fields);
  error.name = serialized.name;
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  return error;
}
