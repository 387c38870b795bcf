import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { drizzle as drizzleNodePg } from "drizzle-orm/node-postgres";
import { migrate as migrateNodePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import pg from "pg";
import { openPgliteWorker } from "./pglite-client.ts";
import { type Schema, schema } from "./schema.ts";

/**
 * The drizzle database the repositories use, whichever driver is underneath. Both drivers' databases are this type;
 * only the raw-result shape of `db.execute()` differs between them, so repositories use the query builder (which
 * returns typed rows on both) and never depend on `execute()`'s result.
 */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

/** Runs one statement on a raw connection: the request writer's hand-built INSERTs. */
export interface StatementRunner {
  query(query: { name?: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

export interface Database {
  kind: "postgres" | "pglite";
  db: Db;
  /**
   * Where the request writer sends its INSERTs. On PostgreSQL, a pooled connection held between batches (the writer
   * runs one batch at a time): checking one out of the pool and back for every commit cost 0.05–0.09 ms each at one
   * connection. On PGlite, its one connection.
   */
  writer: StatementRunner;
  /** Any other hand-built statement: the pool on PostgreSQL (a statement here never waits behind a batch), PGlite's one connection. */
  statements: StatementRunner;
  /**
   * Runs `work` in one transaction on a connection of its own (PGlite's one connection, leased: nothing else runs
   * meanwhile): committed when it resolves, rolled back when it rejects.
   */
  transaction<T>(work: (runner: StatementRunner) => Promise<T>): Promise<T>;
  /**
   * Statements for a library that sends its own SQL (the job queue): one statement with parameters, or without them
   * any number in one string (its schema scripts).
   */
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  /** Resolves when the database answers a trivial query; rejects otherwise (for /ready). */
  ping(): Promise<void>;
  /** Ends the pool or closes PGlite. Idempotent. */
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** `postgres://…`: a real PostgreSQL server. Unset: embedded PGlite under `dataDir`. */
  databaseUrl?: string;
  /** Where PGlite keeps its files; created if missing. Ignored with `databaseUrl`. */
  dataDir: string;
  /** Maximum pg Pool connections. Default 10. Ignored for PGlite (one connection by nature). */
  poolSize?: number;
  /** Errors nobody awaits, e.g. an idle pooled connection dropped by the server. Default: ignored. */
  onError?: (error: Error) => void;
}

/** The committed, generated migrations (drizzle-kit generate), next to this module. */
export const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));

/**
 * Any constant shared by every instance of the service: the key of the session-level advisory lock held while
 * migrating, so two instances starting together apply migrations one after the other instead of racing.
 */
const migrationLockKey = 4_207_311_952;

/** The driver-specific migration of each open database, kept out of the public `Database` shape. */
const migrators = new WeakMap<Database, () => Promise<void>>();

/**
 * Opens PostgreSQL through a pg Pool when `databaseUrl` is set, PGlite stored under `dataDir` otherwise.
 * PostgreSQL connects lazily (the first query, or `ping()`); PGlite is ready when this resolves.
 */
export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl === undefined ? openPglite(options) : openPostgres(options.databaseUrl, options);
}

/**
 * Applies the committed migrations that this database has not seen yet; a no-op when it is up to date.
 * Calls on the same `Database` run one after another; on PostgreSQL an advisory lock does the same across processes.
 */
export async function migrateDatabase(database: Database): Promise<void> {
  const migrate = migrators.get(database);
  if (migrate === undefined) throw new Error("migrateDatabase: not a Database made by createDatabase");
  await migrate();
}

function openPostgres(databaseUrl: string, options: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.poolSize ?? 10,
    application_name: "ai-request-handler",
    // A server that is unreachable (not just stopped) must fail requests in seconds, not after the OS gives up.
    connectionTimeoutMillis: 5_000,
  });
  // Without a listener, an error on an idle pooled client (server restart, network cut) crashes the process.
  pool.on("error", (error) => options.onError?.(error));
  const db: Db = drizzleNodePg({ client: pool, schema });
  const writer = heldConnection(pool, options.onError);

  let closed: Promise<void> | undefined;
  const database: Database = {
    kind: "postgres",
    db,
    writer,
    statements: pool,
    transaction: (work) => inTransaction(() => pool.connect(), work),
    executeSql: (text, values) => pool.query(text, values),
    async ping() {
      await pool.query("select 1");
    },
    close() {
      // The held connection goes back first: the pool's end waits for every checked-out client.
      closed ??= writer.release().then(() => pool.end());
      return closed;
    },
  };

  migrators.set(
    database,
    serialized(async () => {
      // One dedicated connection holds the lock and runs the migration, so the lock is released with it even if
      // the process dies half-way (a session-level lock ends with its session).
      const client = await pool.connect();
      // A checked-out client has no pool listener; a connection lost between two statements would crash otherwise.
      const onClientError = (error: Error) => options.onError?.(error);
      client.on("error", onClientError);
      let broken: Error | undefined;
      try {
        await client.query("select pg_advisory_lock($1)", [migrationLockKey]);
        try {
          await migrateNodePg(drizzleNodePg({ client, schema }), { migrationsFolder });
        } finally {
          await client.query("select pg_advisory_unlock($1)", [migrationLockKey]);
        }
      } catch (error) {
        broken = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.off("error", onClientError);
        // Passing the error destroys the connection instead of pooling it: it may still hold the lock or be mid-error.
        client.release(broken);
      }
    }),
  );
  return database;
}

/**
 * PGlite runs in a worker thread: its queries execute synchronously inside WebAssembly and would stall the event
 * loop. The worker's client looks like a one-connection pg Pool, so the node-postgres driver and migrator serve it
 * (drizzle-orm/pglite would load PGlite into this thread).
 */
async function openPglite(options: DatabaseOptions): Promise<Database> {
  await mkdir(options.dataDir, { recursive: true });
  const client = await openPgliteWorker(options.dataDir, { onError: options.onError });
  // The client is not a pg.Pool, but answers every call drizzle's node-postgres session makes on one.
  const pgliteDb = drizzleNodePg({ client: client as unknown as pg.Pool, schema });
  const db: Db = pgliteDb;

  const database: Database = {
    kind: "pglite",
    db,
    writer: client,
    statements: client,
    transaction: (work) => inTransaction(() => client.connect(), work),
    async executeSql(text, values) {
      if (values && values.length > 0) return client.query(text, values);
      // PGlite's query takes one statement; several come through exec (the simple query protocol).
      const results = await client.exec(text);
      return { rows: results.at(-1)?.rows ?? [] };
    },
    async ping() {
      await client.query("select 1");
    },
    close: () => client.close(),
  };
  // PGlite is one connection in this process: serializing the calls is all the locking it needs.
  migrators.set(
    database,
    serialized(() => migrateNodePg(pgliteDb, { migrationsFolder })),
  );
  return database;
}

interface Leased {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  release(error?: Error): void;
}

async function inTransaction<T>(
  connect: () => Promise<Leased>,
  work: (runner: StatementRunner) => Promise<T>,
): Promise<T> {
  const connection = await connect();
  let broken: Error | undefined;
  try {
    await connection.query("begin");
    const result = await work({ query: (query) => connection.query(query.text, query.values) });
    await connection.query("commit");
    return result;
  } catch (error) {
    try {
      await connection.query("rollback");
    } catch (rollbackError) {
      // A connection that cannot even roll back is not given back to the pool.
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    connection.release(broken);
  }
}

/**
 * A pooled connection checked out on first use and kept. A statement that fails, or a connection that reports an
 * error while held, is given back destroyed (it may be broken), and the next statement checks out a fresh one.
 */
function heldConnection(
  pool: pg.Pool,
  onError: ((error: Error) => void) | undefined,
): StatementRunner & { release(): Promise<void> } {
  let held: Promise<pg.PoolClient> | undefined;
  // A checked-out client has no pool listener: without one, an error while it sits idle would crash the process.
  const onClientError = (error: Error) => {
    onError?.(error);
    drop(error);
  };
  function drop(error?: Error) {
    const dropping = held;
    held = undefined;
    void dropping?.then(
      (client) => {
        client.off("error", onClientError);
        client.release(error);
      },
      () => {},
    );
  }
  function checkout(): Promise<pg.PoolClient> {
    held ??= pool.connect().then((client) => {
      client.on("error", onClientError);
      return client;
    });
    return held;
  }
  return {
    async query(query) {
      const holding = checkout();
      try {
        return await (await holding).query(query);
      } catch (error) {
        // Only the connection this statement ran on (or failed to get): a lost one may have been replaced already.
        // A row the server refused leaves the connection as good as it was.
        if (held === holding && !isRowRejection(error)) drop(error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
    },
    async release() {
      const releasing = held;
      drop();
      await releasing?.catch(() => {});
    },
  };
}

/** Wraps `task` so overlapping calls run one after another; a failure does not block later calls. */
function serialized(task: () => Promise<void>): () => Promise<void> {
  let tail: Promise<void> = Promise.resolve();
  return () => {
    const run = tail.then(task);
    tail = run.catch(() => {});
    return run;
  };
}

/**
 * SQLSTATE classes that mean "a value in the statement is refused", not "the database is unwell": data exceptions
 * (22: a character it cannot hold, a number out of range), integrity violations (23) and size limits (54).
 */
const rowRejectionStates = /^(22|23|54)/;

/** Whether the database refused a statement for a value it carries: retrying its rows apart isolates the culprit. */
export function isRowRejection(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return rowRejectionStates.test(code);
    current = current.cause;
  }
  return false;
}

/** SQLSTATE classes and codes that mean "the database is not there right now", not "the query is wrong". */
const unavailableStates = /^(08|57P0[1-3]|53300)/;
const unavailableMessages =
  /Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|timeout exceeded when trying to connect|Connection ended/i;

/**
 * Whether an error (or its cause: drizzle wraps the driver's) says the database cannot be reached, so the request
 * can be refused with 503 and Retry-After instead of a 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (
      typeof code === "string" &&
      (unavailableStates.test(code) || code === "ECONNREFUSED" || code === "ECONNRESET")
    ) {
      return true;
    }
    if (unavailableMessages.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}
