import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SQL } from "drizzle-orm";
import pg from "pg";
import { createDatabase, type Database, type DatabaseOptions, migrateDatabase } from "../../src/db/client.ts";

/** Both storage backends; storage suites run once per entry. */
export const storageBackends = ["postgres", "pglite"] as const;
export type StorageBackend = (typeof storageBackends)[number];

/** The server's maintenance connection, used only to create and drop the per-test databases. */
function adminUrl(): string {
  return process.env.DATABASE_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/test";
}

export interface TestPostgres {
  /** Connection URL of a fresh, empty database of its own. */
  url: string;
  /** Drops the database, ending any connection still open on it. Idempotent. */
  close(): Promise<void>;
}

/** A uniquely named database (`arh_test_<random>`) on the local server, dropped by `close()`. */
export async function createTestPostgres(): Promise<TestPostgres> {
  const name = `arh_test_${randomBytes(6).toString("hex")}`;
  await withAdmin((client) => client.query(`create database ${name}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: url.toString(),
    close() {
      // WITH (FORCE) (PostgreSQL 13+) terminates the sessions a test left open instead of failing on them.
      dropped ??= withAdmin(async (client) => {
        await client.query(`drop database if exists ${name} with (force)`);
      });
      return dropped;
    },
  };
}

export interface TestPglite {
  dataDir: string;
  /** Removes the directory; close the PGlite instance first. Idempotent. */
  close(): Promise<void>;
}

/** A fresh temporary directory for a PGlite data dir, removed by `close()`. */
export async function createTestPglite(): Promise<TestPglite> {
  const dataDir = await mkdtemp(join(tmpdir(), "arh-pglite-"));
  return {
    dataDir,
    close: () => rm(dataDir, { recursive: true, force: true }),
  };
}

export interface TestDatabase {
  backend: StorageBackend;
  /** Open and migrated. */
  database: Database;
  /** What opens the same storage again: a second pool on the same database, or PGlite once `database` is closed. */
  options: DatabaseOptions;
  /** Closes `database` and removes its storage. */
  close(): Promise<void>;
}

/** A migrated database of its own on the given backend. Open one per suite: PGlite takes about a second to start. */
export async function openTestDatabase(backend: StorageBackend): Promise<TestDatabase> {
  const { options, removeStorage } = await createStorage(backend);
  let database: Database | undefined;
  try {
    database = await createDatabase(options);
    await migrateDatabase(database);
  } catch (error) {
    await database?.close();
    await removeStorage();
    throw error;
  }
  const opened = database;
  return {
    backend,
    database: opened,
    options,
    async close() {
      await opened.close();
      await removeStorage();
    },
  };
}

async function createStorage(
  backend: StorageBackend,
): Promise<{ options: DatabaseOptions; removeStorage: () => Promise<void> }> {
  if (backend === "postgres") {
    const postgres = await createTestPostgres();
    return { options: { databaseUrl: postgres.url, dataDir: "", poolSize: 5 }, removeStorage: postgres.close };
  }
  const pglite = await createTestPglite();
  return { options: { dataDir: pglite.dataDir }, removeStorage: pglite.close };
}

/**
 * Rows of a raw statement. `db.execute()` is typed `unknown` for the shared driver type; both drivers answer an
 * object with `rows`, which this checks at run time.
 */
export async function queryRows(database: Database, query: SQL): Promise<Record<string, unknown>[]> {
  const result: unknown = await database.db.execute(query);
  if (typeof result === "object" && result !== null && "rows" in result && Array.isArray(result.rows)) {
    return result.rows as Record<string, unknown>[];
  }
  throw new Error("unexpected result shape from db.execute()");
}

async function withAdmin<T>(task: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await task(client);
  } finally {
    await client.end();
  }
}
