import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { sql } from "drizzle-orm";
import { createDatabase, type Database, isDatabaseUnavailable } from "../src/db/client.ts";
import { PgliteWorkerPool } from "../src/db/pglite-client.ts";
import { exitOf } from "./helpers/processes.ts";
import { createTestPglite, queryRows, type TestPglite } from "./helpers/databases.ts";

type PostgresError = Error & { code: string; [field: string]: unknown };

/** The first error in the chain (drizzle wraps the driver's) that carries a SQLSTATE code. */
function withCode(error: unknown): PostgresError {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (typeof (current as { code?: unknown }).code === "string") return current as PostgresError;
  }
  throw new Error("no error with a code in the chain", { cause: error });
}

/** A stand-in worker speaking pglite-worker's protocol: ready at once, then `onRequest` runs for each request. */
function fakeWorker(onRequest: string): Worker {
  const source = `
    const { parentPort } = require("node:worker_threads");
    parentPort.postMessage({ type: "ready" });
    parentPort.on("message", (request) => { ${onRequest} });
  `;
  return new Worker(source, { eval: true });
}

describe("PGlite in a worker thread", () => {
  let dir: TestPglite;
  let database: Database;

  before(async () => {
    dir = await createTestPglite();
    database = await createDatabase({ dataDir: dir.dataDir });
    await database.db.execute(sql`create table events (n int primary key, note text)`);
  });

  after(async () => {
    await database?.close();
    await dir?.close();
  });

  test("the event loop keeps ticking while PGlite works", async () => {
    let last = performance.now();
    let maxGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 10);
    const started = performance.now();
    try {
      await database.db.execute(sql`select pg_sleep(0.4)`);
    } finally {
      clearInterval(ticker);
    }
    maxGap = Math.max(maxGap, performance.now() - last);
    assert.ok(performance.now() - started >= 350, "the query did take its time");
    // In the main thread the 400 ms query froze the loop for all of it.
    assert.ok(maxGap < 100, `the longest pause between 10 ms ticks was ${maxGap.toFixed(0)} ms`);
  });

  test("a transaction is exclusive: a query from outside waits for its commit", async () => {
    const order: string[] = [];
    let outside: Promise<Record<string, unknown>[]> | undefined;
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`insert into events values (1, 'in the transaction')`);
      outside = queryRows(database, sql`select count(*)::int as n from events`).then((rows) => {
        order.push("outside query");
        return rows;
      });
      // Time enough for the outside query to run if nothing held it back.
      await sleep(50);
      order.push("last statement");
      await tx.execute(sql`insert into events values (2, 'in the transaction')`);
    });
    order.push("committed");
    assert.deepEqual(await outside, [{ n: 2 }], "it saw the committed transaction, not half of it");
    assert.deepEqual(order, ["last statement", "committed", "outside query"]);
  });

  test("a transaction that fails rolls back and frees the connection", async () => {
    const failed = database.db.transaction(async (tx) => {
      await tx.execute(sql`insert into events values (3, 'rolled back')`);
      await tx.execute(sql`insert into events values (1, 'duplicate')`);
    });
    assert.equal(
      withCode(
        await failed.then(
          () => undefined,
          (error: unknown) => error,
        ),
      ).code,
      "23505",
    );
    assert.deepEqual(await queryRows(database, sql`select n from events where n = 3`), []);
  });

  test("errors cross the thread as Errors with PostgreSQL's fields", async () => {
    const duplicate = await database.db.execute(sql`insert into events values (1, 'again')`).then(
      () => undefined,
      (error: unknown) => error,
    );
    const unique = withCode(duplicate);
    assert.ok(unique instanceof Error);
    assert.equal(unique.code, "23505");
    assert.equal(unique.constraint, "events_pkey");
    assert.equal(unique.detail, "Key (n)=(1) already exists.");
    assert.equal(unique.table, "events");
    assert.match(unique.message, /duplicate key value violates unique constraint "events_pkey"/);

    // The raw client, as the request repository uses it: the error itself carries the code.
    const client = (database.db as unknown as { $client: PgliteWorkerPool }).$client;
    const syntax = await client.query("selec 1").then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(syntax instanceof Error);
    assert.equal((syntax as Error & { code?: unknown }).code, "42601");
    assert.equal(isDatabaseUnavailable(syntax), false);
  });

  test("rows come back as before: drizzle's date and time types stay text, the raw client parses them", async () => {
    const client = (database.db as unknown as { $client: PgliteWorkerPool }).$client;
    const raw = await client.query<{ at: unknown; big: unknown }>(
      "select timestamptz '2024-01-01 00:00:00Z' as at, 5::int8 as big",
    );
    assert.ok(raw.rows[0]?.at instanceof Date);
    const [row] = await queryRows(database, sql`select timestamptz '2024-01-01 00:00:00Z' as at, now() as now`);
    assert.equal(typeof row?.at, "string");
    assert.equal(typeof row?.now, "string");
  });

  // Last two on the shared instance: they close it.
  test("after close(), queries fail with an Error and close() stays idempotent", async () => {
    await database.ping();
    await Promise.all([database.close(), database.close()]);
    await database.close();
    await assert.rejects(database.ping(), (error: unknown) => error instanceof Error && /closed/.test(error.message));
    const viaDrizzle = await database.db.execute(sql`select 1`).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(viaDrizzle instanceof Error);
    assert.ok(isDatabaseUnavailable(viaDrizzle), "a closed database is unavailable (503), not a bug (500)");
  });

  /**
   * Runs `body` as an ES module in a node process of its own, with `createDatabase` on `dataDir` as `database`.
   * Resolves with how it exited and what it printed; killed after 30 s.
   */
  async function inOwnProcess(dataDir: string, body: string) {
    const client = new URL("../src/db/client.ts", import.meta.url).href;
    const script = `
      import { createDatabase } from ${JSON.stringify(client)};
      const database = await createDatabase({ dataDir: ${JSON.stringify(dataDir)} });
      ${body}
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += String(chunk);
    });
    const timeout = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const exit = await exitOf(child);
    clearTimeout(timeout);
    return { exit, output: output.trim() };
  }

  test("the process exits without waiting on the worker, closed or not", async () => {
    for (const close of [true, false]) {
      const { exit, output } = await inOwnProcess(
        dir.dataDir,
        `await database.ping(); ${close ? "await database.close();" : ""} console.log("done");`,
      );
      assert.deepEqual(exit, { code: 0, signal: null }, `with close(): ${close}`);
      assert.equal(output, "done");
    }
  });

  test("a first start serves with the memory of an existing database, not of creating one", async () => {
    // Creating a cluster grows PGlite's WebAssembly memory by several hundred MB, which a worker keeps until it ends.
    const fresh = await createTestPglite();
    try {
      const rssAfterOpening = async () => {
        const { exit, output } = await inOwnProcess(
          fresh.dataDir,
          "await database.ping(); console.log(Math.round(process.memoryUsage().rss / 1048576)); await database.close();",
        );
        assert.deepEqual(exit, { code: 0, signal: null }, output);
        return Number(output);
      };
      const creating = await rssAfterOpening();
      const existing = await rssAfterOpening();
      assert.ok(
        creating < existing + 150,
        `RSS ${creating} MB after a first start, ${existing} MB after opening the same database again`,
      );
    } finally {
      await fresh.close();
    }
  });

  test("a worker that dies fails what it owed, what waited and what comes later", async () => {
    const errors: Error[] = [];
    const pool = await PgliteWorkerPool.start(fakeWorker("process.exit(3);"), { onError: (e) => errors.push(e) });
    const connection = await pool.connect();
    const queued = pool.query("select 2");
    const owed = connection.query("select 1");
    const diedOf = (error: unknown) => error instanceof Error && /exit code 3/.test(error.message);
    await assert.rejects(owed, diedOf);
    await assert.rejects(queued, diedOf);
    await assert.rejects(pool.query("select 3"), diedOf);
    assert.equal(pool.closed, true);
    assert.equal(errors.length, 1, "reported once through onError");
    assert.ok(isDatabaseUnavailable(errors[0]));
    await pool.close();
  });

  test("a worker that cannot open PGlite fails the start", async () => {
    const failing = new Worker(`throw new Error("no data dir")`, { eval: true });
    await assert.rejects(PgliteWorkerPool.start(failing), /no data dir/);
  });
});
