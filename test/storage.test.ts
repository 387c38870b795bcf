import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { createApiKeyRepository } from "../src/db/api-keys.ts";
import { createDatabase, type Db, migrateDatabase, migrationsFolder } from "../src/db/client.ts";
import { encodeCursor } from "../src/db/cursor.ts";
import { createRequestWriter, RequestWriterClosedError } from "../src/db/request-writer.ts";
import { createRequestRepository, InvalidCursorError } from "../src/db/requests.ts";
import { schema } from "../src/db/schema.ts";
import { type RequestRecord, type RequestType, requestTypes } from "../src/db/types.ts";
import { createUserRepository } from "../src/db/users.ts";
import { newId } from "../src/ids.ts";
import {
  createTestPostgres,
  openTestDatabase,
  queryRows,
  storageBackends,
  type TestDatabase,
} from "./helpers/databases.ts";
import { requestRecord } from "./helpers/records.ts";

const baseTime = Date.UTC(2024, 0, 1);

function uniqueEmail(label: string): string {
  return `${label}-${randomBytes(4).toString("hex")}@Example.com`;
}

function makeRecord(userId: string, overrides: Partial<RequestRecord> = {}): RequestRecord {
  return requestRecord(userId, {
    type: "summarize",
    provider: "mock",
    input: "a long text to summarize",
    options: { temperature: 0.2, length: "short" },
    output: "a summary",
    latencyMs: 42,
    upstreamMs: 40,
    metadata: { app: "storage-test" },
    createdAt: new Date(baseTime),
    completedAt: new Date(baseTime + 42),
    ...overrides,
  });
}

/** A gate a fake insert can wait on, released by the test. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

describe("request writer batching (no database)", () => {
  test("low load: each write is its own batch, started at once", async () => {
    const batches: number[] = [];
    const writer = createRequestWriter({
      insertMany: async (records) => {
        batches.push(records.length);
      },
    });
    for (let i = 0; i < 3; i++) await writer.write(makeRecord("usr_x"));
    assert.deepEqual(batches, [1, 1, 1]);
    assert.equal(writer.pending(), 0);
  });

  test("writes arriving while a batch is in flight go together in the next batch, capped at maxBatchSize", async () => {
    const batches: string[][] = [];
    const firstStarted = gate();
    const first = gate();
    const writer = createRequestWriter({
      maxBatchSize: 3,
      insertMany: async (records) => {
        batches.push(records.map((r) => r.id));
        if (batches.length === 1) {
          firstStarted.open();
          await first.wait;
        }
      },
    });
    const a = writer.write(makeRecord("usr_x", { id: "a" }));
    await firstStarted.wait; // a's batch is now in flight
    const rest = ["b", "c", "d", "e"].map((id) => writer.write(makeRecord("usr_x", { id })));
    assert.equal(writer.pending(), 5);
    first.open();
    await Promise.all([a, ...rest]);
    assert.deepEqual(batches, [["a"], ["b", "c", "d"], ["e"]]);
  });

  test("an error hook that throws does not stop the writer", async () => {
    let calls = 0;
    const writer = createRequestWriter({
      insertMany: async () => {
        calls++;
        if (calls === 1) throw new Error("boom");
      },
      onError: () => {
        throw new Error("hook failed");
      },
    });
    await assert.rejects(writer.write(makeRecord("usr_x")), /boom/);
    await writer.write(makeRecord("usr_x"));
    assert.equal(calls, 2);
  });
});

/** How many migrations the repository has: applying them records exactly that many rows. */
const migrationCount = (
  JSON.parse(readFileSync(`${migrationsFolder}/meta/_journal.json`, "utf8")) as { entries: unknown[] }
).entries.length;

for (const backend of storageBackends) {
  describe(`storage on ${backend}`, () => {
    let handle: TestDatabase;
    let db: Db;
    let usersRepo: ReturnType<typeof createUserRepository>;
    let keysRepo: ReturnType<typeof createApiKeyRepository>;
    let requestsRepo: ReturnType<typeof createRequestRepository>;

    before(async () => {
      handle = await openTestDatabase(backend);
      db = handle.database.db;
      usersRepo = createUserRepository(db);
      keysRepo = createApiKeyRepository(db);
      requestsRepo = createRequestRepository(db);
    });

    after(async () => {
      await handle?.close();
    });

    async function newUser(label: string): Promise<string> {
      const result = await usersRepo.create({ email: uniqueEmail(label) });
      assert.ok(result.ok);
      return result.user.id;
    }

    test("migrations are idempotent: applying them again changes nothing", async () => {
      await migrateDatabase(handle.database);
      await Promise.all([migrateDatabase(handle.database), migrateDatabase(handle.database)]);
      const applied = await queryRows(
        handle.database,
        sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
      );
      assert.equal(applied[0]?.n, migrationCount);
      await handle.database.ping();
    });

    if (backend === "postgres") {
      test("two instances migrating a fresh database at the same time both succeed", async () => {
        const fresh = await createTestPostgres();
        const first = await createDatabase({ databaseUrl: fresh.url, dataDir: "" });
        const second = await createDatabase({ databaseUrl: fresh.url, dataDir: "" });
        try {
          await Promise.all([migrateDatabase(first), migrateDatabase(second)]);
          const applied = await queryRows(first, sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
          assert.equal(applied[0]?.n, migrationCount);
          assert.equal(await createUserRepository(second.db).count(), 0);
        } finally {
          await first.close();
          await second.close();
          await fresh.close();
        }
      });
    }

    if (backend === "postgres") {
      test("a pooled connection killed while idle is reported to onError and the pool recovers", async () => {
        const errors: Error[] = [];
        const database = await createDatabase({ ...handle.options, poolSize: 1, onError: (e) => errors.push(e) });
        try {
          const [own] = await queryRows(database, sql`select pg_backend_pid() as pid`);
          assert.ok(own);
          await handle.database.db.execute(sql`select pg_terminate_backend(${own.pid})`);
          for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(20);
          assert.equal(errors.length, 1);
          await database.ping();
        } finally {
          await database.close();
        }
      });
    }

    if (backend === "postgres") {
      test("the writer keeps one connection; killed while held, it is reported and replaced, and commits go on", async () => {
        const errors: Error[] = [];
        const database = await createDatabase({ ...handle.options, onError: (e) => errors.push(e) });
        try {
          const repo = createRequestRepository(database.db, database.writer);
          const writerPid = async () => {
            const { rows } = await database.writer.query({ text: "select pg_backend_pid() as pid", values: [] });
            return (rows[0] as { pid: number }).pid;
          };
          const userId = await newUser("held-connection");
          const first = await writerPid();
          assert.equal(await repo.insertMany([makeRecord(userId)]), 1);
          assert.equal(await writerPid(), first, "the same connection from one statement to the next");

          await handle.database.db.execute(sql`select pg_terminate_backend(${first})`);
          for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(20);
          assert.equal(errors.length, 1, "the lost connection is reported");
          const record = makeRecord(userId);
          assert.equal(await repo.insertMany([record]), 1, "the next commit goes through");
          assert.deepEqual(await requestsRepo.get(userId, record.id), record);
          const second = await writerPid();
          assert.notEqual(second, first);

          // A value the server refuses (a data exception) leaves the connection as it was: the request writer then
          // writes the rows of that batch apart, on the same connection.
          await assert.rejects(database.writer.query({ text: "select 1/0", values: [] }), /division by zero/);
          assert.equal(await writerPid(), second);
          // Any other failing statement gives its connection back: it may be mid-error.
          await assert.rejects(database.writer.query({ text: "select * from no_such_table", values: [] }), /exist/);
          assert.notEqual(await writerPid(), second);
        } finally {
          // Returns the held connection before ending the pool, which would otherwise wait for it forever.
          await database.close();
        }
      });
    }

    describe("users", () => {
      test("create, get, get by email (case-insensitive), duplicate email", async () => {
        const email = uniqueEmail("Alice");
        const created = await usersRepo.create({ email, name: "Alice", rpm: 60, monthlyBudgetUsd: 12.5 });
        assert.ok(created.ok);
        const user = created.user;
        assert.match(user.id, /^usr_/);
        assert.equal(user.email, email.toLowerCase());
        assert.equal(user.role, "user");
        assert.equal(user.disabled, false);
        assert.equal(user.rpm, 60);
        assert.equal(user.tpm, null);
        assert.equal(user.monthlyBudgetUsd, 12.5);
        assert.ok(user.createdAt instanceof Date);

        assert.deepEqual(await usersRepo.get(user.id), user);
        assert.deepEqual(await usersRepo.getByEmail(email.toUpperCase()), user);
        assert.equal(await usersRepo.get("usr_unknown"), undefined);
        assert.equal(await usersRepo.getByEmail("nobody@example.com"), undefined);

        const duplicate = await usersRepo.create({ email: ` ${email.toUpperCase()} ` });
        assert.deepEqual(duplicate, { ok: false, reason: "email_taken" });
      });

      test("update changes only the given fields; null clears; unknown id is undefined", async () => {
        const created = await usersRepo.create({ email: uniqueEmail("bob"), name: "Bob", rpm: 10, tpm: 1000 });
        assert.ok(created.ok);
        const before = created.user;
        const updated = await usersRepo.update(before.id, { rpm: 20, tpm: null, disabled: true, role: "admin" });
        assert.ok(updated);
        assert.equal(updated.name, "Bob");
        assert.equal(updated.rpm, 20);
        assert.equal(updated.tpm, null);
        assert.equal(updated.disabled, true);
        assert.equal(updated.role, "admin");
        assert.ok(updated.updatedAt.getTime() >= before.updatedAt.getTime());
        assert.deepEqual(await usersRepo.get(before.id), updated);
        assert.deepEqual((await usersRepo.update(before.id, {}))?.rpm, 20);
        assert.equal(await usersRepo.update("usr_unknown", { name: "x" }), undefined);
      });

      test("list pages through every user once, and count agrees", async () => {
        await newUser("list-a");
        await newUser("list-b");
        const total = await usersRepo.count();
        assert.ok(total >= 2);
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 100; page++) {
          const result = await usersRepo.list({ limit: 2, cursor });
          seen.push(...result.data.map((u) => u.id));
          if (result.nextCursor === null) break;
          cursor = result.nextCursor;
        }
        assert.equal(seen.length, total);
        assert.deepEqual(seen, [...seen].sort());
        await assert.rejects(usersRepo.list({ limit: 2, cursor: "%%%" }), InvalidCursorError);
      });
    });

    describe("api keys", () => {
      test("create, find by hash with its user, list, revoke (idempotent), expiry", async () => {
        const userId = await newUser("keys");
        const hash = (label: string) => `${label}-${randomBytes(16).toString("hex")}`;
        const live = await keysRepo.create({
          id: newId("key"),
          userId,
          name: "ci",
          prefix: "arh_AbCd1234",
          hash: hash("live"),
          expiresAt: null,
        });
        assert.equal(live.revokedAt, null);
        assert.deepEqual(await keysRepo.get(live.id), live);

        const found = await keysRepo.findActiveByHash(live.hash);
        assert.ok(found);
        assert.deepEqual(found.key, live);
        assert.equal(found.user.id, userId);
        assert.equal(await keysRepo.findActiveByHash("no-such-hash"), undefined);

        const expiresAt = new Date(Date.now() + 60_000);
        const expiring = await keysRepo.create({
          id: newId("key"),
          userId,
          name: null,
          prefix: "arh_Expiring",
          hash: hash("expiring"),
          expiresAt,
        });
        assert.ok(await keysRepo.findActiveByHash(expiring.hash));
        assert.equal(await keysRepo.findActiveByHash(expiring.hash, new Date(expiresAt.getTime() + 1)), undefined);
        const expired = await keysRepo.create({
          id: newId("key"),
          userId,
          name: null,
          prefix: "arh_Expired0",
          hash: hash("expired"),
          expiresAt: new Date(Date.now() - 1000),
        });
        assert.equal(await keysRepo.findActiveByHash(expired.hash), undefined);

        const revoked = await keysRepo.revoke(live.id);
        assert.ok(revoked?.revokedAt instanceof Date);
        const again = await keysRepo.revoke(live.id);
        assert.deepEqual(again?.revokedAt, revoked.revokedAt);
        assert.equal(await keysRepo.findActiveByHash(live.hash), undefined);
        assert.equal(await keysRepo.revoke("key_unknown"), undefined);

        const listed = await keysRepo.listByUser(userId);
        assert.deepEqual(listed.map((k) => k.id).sort(), [live.id, expiring.id, expired.id].sort());
        assert.deepEqual(await keysRepo.listByUser("usr_unknown"), []);
      });
    });

    describe("requests", () => {
      test("insertMany then get round-trips every field; a retried batch does not duplicate", async () => {
        const userId = await newUser("roundtrip");
        const chat = makeRecord(userId, {
          type: "chat",
          source: "openai",
          apiKeyId: "key_whatever",
          input: [{ role: "user", content: "hi" }],
          output: { label: "positive" },
          costUsd: null,
          upstreamMs: null,
          retries: 2,
          createdAt: new Date(baseTime + 1),
          completedAt: null,
        });
        // Text that is also valid JSON must come back as text.
        const numericText = makeRecord(userId, { input: "123", output: "true", options: null, metadata: {} });
        const failed = makeRecord(userId, {
          status: "failed",
          output: null,
          error: { code: "upstream_timeout", message: "no answer in 120000 ms" },
        });
        assert.equal(await requestsRepo.insertMany([chat, numericText]), 2);
        assert.equal(await requestsRepo.insertMany([chat, failed]), 1);
        assert.equal(await requestsRepo.insertMany([]), 0);

        assert.deepEqual(await requestsRepo.get(userId, chat.id), chat);
        assert.deepEqual(await requestsRepo.get(userId, numericText.id), numericText);
        assert.deepEqual(await requestsRepo.get(userId, failed.id), failed);
        const count = await queryRows(
          handle.database,
          sql`select count(*)::int as n from requests where user_id = ${userId}`,
        );
        assert.equal(count[0]?.n, 3);
      });

      test("another user's request is invisible: get, list and delete", async () => {
        const owner = await newUser("owner");
        const other = await newUser("other");
        const record = makeRecord(owner);
        await requestsRepo.insertMany([record]);
        assert.equal(await requestsRepo.get(other, record.id), undefined);
        assert.deepEqual((await requestsRepo.list({ userId: other, limit: 100 })).data, []);
        assert.equal(await requestsRepo.softDelete(other, record.id), false);
        assert.ok(await requestsRepo.get(owner, record.id));
        assert.equal(await requestsRepo.get(owner, "req_unknown"), undefined);
      });

      describe("list", () => {
        let userId: string;
        /** Every row of the user, in the order the list must return them. */
        let expected: RequestRecord[];
        const types: RequestType[] = ["chat", "summarize", "embed"];

        before(async () => {
          userId = await newUser("pages");
          const noise = await newUser("noise");
          const distinct = Array.from({ length: 10 }, (_, i) =>
            makeRecord(userId, {
              createdAt: new Date(baseTime + i * 1000),
              type: types[i % 3],
              status: i % 4 === 0 ? "failed" : "completed",
            }),
          );
          // Same timestamp: only the id orders them.
          const sameTime = Array.from({ length: 5 }, (_, i) =>
            makeRecord(userId, { createdAt: new Date(baseTime + 20_000), type: types[i % 3] }),
          );
          // Same millisecond, different microseconds (set below), ids in the opposite order of time: a millisecond
          // cursor would skip or repeat these.
          const micro = ["req_micro_c", "req_micro_b", "req_micro_a"].map((id) =>
            makeRecord(userId, {
              id: `${id}${randomBytes(4).toString("hex")}`,
              createdAt: new Date(baseTime + 30_000),
            }),
          );
          await requestsRepo.insertMany([...distinct, ...sameTime, ...micro, makeRecord(noise)]);
          for (const [i, record] of micro.entries()) {
            await handle.database.db.execute(
              sql`update requests set created_at = created_at + ${(i + 1) * 100} * interval '1 microsecond'
                  where id = ${record.id}`,
            );
          }
          const byIdDesc = (a: RequestRecord, b: RequestRecord) => (a.id < b.id ? 1 : -1);
          expected = [...[...micro].reverse(), ...[...sameTime].sort(byIdDesc), ...[...distinct].reverse()];
        });

        async function collect(query: { limit: number; type?: RequestType; status?: "failed" }): Promise<string[]> {
          const ids: string[] = [];
          let cursor: string | undefined;
          for (let page = 0; page < 100; page++) {
            const result = await requestsRepo.list({ userId, ...query, cursor });
            assert.ok(result.data.length <= query.limit);
            ids.push(...result.data.map((r) => r.id));
            if (result.nextCursor === null) return ids;
            assert.equal(result.data.length, query.limit, "a page with a next cursor is full");
            cursor = result.nextCursor;
          }
          throw new Error("pagination did not end");
        }

        test("newest first across pages, no duplicates or gaps, id breaks ties", async () => {
          const want = expected.map((r) => r.id);
          for (const limit of [1, 4, 7, 18, 100]) {
            assert.deepEqual(await collect({ limit }), want, `limit ${limit}`);
          }
          const single = await requestsRepo.list({ userId, limit: 18 });
          assert.equal(single.nextCursor, null, "no next cursor when the page holds exactly the rest");
          assert.ok(single.data[0]?.createdAt instanceof Date);
        });

        test("filters by type and by status keep the order and paginate", async () => {
          for (const type of types) {
            const want = expected.filter((r) => r.type === type).map((r) => r.id);
            assert.ok(want.length > 0);
            assert.deepEqual(await collect({ limit: 2, type }), want, type);
          }
          const failed = expected.filter((r) => r.status === "failed").map((r) => r.id);
          assert.ok(failed.length > 0);
          assert.deepEqual(await collect({ limit: 2, status: "failed" }), failed);
          assert.deepEqual((await requestsRepo.list({ userId, limit: 10, type: "extract" })).data, []);
        });

        test("an invalid cursor is an InvalidCursorError naming the cursor", async () => {
          const bad = [
            "",
            "not a cursor!",
            "bm90LWEtY3Vyc29y", // base64url of "not-a-cursor"
            encodeCursor(["2024-02-30T00:00:00.000000Z", "req_x"]),
            encodeCursor(["2024-01-01T00:00:00Z", "req_x"]),
            encodeCursor(["2024-01-01T00:00:00.000000Z", "req x'; drop table requests"]),
            encodeCursor(["2024-01-01T00:00:00.000000Z", "req_x", "extra"]),
          ];
          for (const cursor of bad) {
            await assert.rejects(requestsRepo.list({ userId, limit: 5, cursor }), (error: unknown) => {
              assert.ok(error instanceof InvalidCursorError, `cursor ${JSON.stringify(cursor)}`);
              assert.equal(error.field, "cursor");
              return true;
            });
          }
        });
      });

      test("softDelete drops input, options and output, keeps usage, and hides the request", async () => {
        const userId = await newUser("delete");
        const record = makeRecord(userId);
        const kept = makeRecord(userId, { createdAt: new Date(baseTime - 1000) });
        await requestsRepo.insertMany([record, kept]);
        assert.equal(await requestsRepo.softDelete(userId, record.id), true);
        assert.equal(await requestsRepo.softDelete(userId, record.id), false, "already deleted");
        assert.equal(await requestsRepo.get(userId, record.id), undefined);
        assert.deepEqual(
          (await requestsRepo.list({ userId, limit: 10 })).data.map((r) => r.id),
          [kept.id],
        );
        const [row] = await queryRows(
          handle.database,
          sql`select input, options, output, total_tokens, cost_usd, deleted_at from requests where id = ${record.id}`,
        );
        assert.ok(row);
        assert.equal(row.input, null);
        assert.equal(row.options, null);
        assert.equal(row.output, null);
        assert.equal(row.total_tokens, 15);
        assert.equal(row.cost_usd, 0.000123);
        assert.notEqual(row.deleted_at, null);
      });
    });

    describe("request writer", () => {
      test("a write resolves once the record is committed", async () => {
        const userId = await newUser("writer-one");
        const writer = createRequestWriter({ insertMany: requestsRepo.insertMany });
        const record = makeRecord(userId);
        await writer.write(record);
        assert.deepEqual(await requestsRepo.get(userId, record.id), record);
        await writer.close();
      });

      test("1000 concurrent writes are all stored in far fewer statements", async () => {
        const userId = await newUser("writer-many");
        const batchSizes: number[] = [];
        const writer = createRequestWriter({
          insertMany: (records) => {
            batchSizes.push(records.length);
            return requestsRepo.insertMany(records);
          },
        });
        const records = Array.from({ length: 1000 }, (_, i) =>
          makeRecord(userId, { createdAt: new Date(baseTime + i) }),
        );
        await Promise.all(records.map((record) => writer.write(record)));
        assert.equal(writer.pending(), 0);
        assert.equal(
          batchSizes.reduce((a, b) => a + b, 0),
          1000,
        );
        assert.ok(batchSizes.length <= 10, `${batchSizes.length} statements`);
        assert.ok(Math.max(...batchSizes) <= 500);
        const [row] = await queryRows(
          handle.database,
          sql`select count(*)::int as n from requests where user_id = ${userId}`,
        );
        assert.equal(row?.n, 1000);
        await writer.close();
      });

      test("a failing batch rejects exactly its writers and the next batch still works", async () => {
        const userId = await newUser("writer-fail");
        const errors: number[] = [];
        const writer = createRequestWriter({
          insertMany: requestsRepo.insertMany,
          maxBatchSize: 2,
          onError: (_error, batchSize) => errors.push(batchSize),
        });
        const good1 = makeRecord(userId);
        const bad = makeRecord("usr_does_not_exist"); // foreign key violation fails the whole statement
        const good2 = makeRecord(userId);
        const good3 = makeRecord(userId);
        const results = await Promise.allSettled([good1, bad, good2, good3].map((r) => writer.write(r)));
        assert.deepEqual(
          results.map((r) => r.status),
          ["rejected", "rejected", "fulfilled", "fulfilled"],
        );
        assert.deepEqual(errors, [2]);
        assert.equal(await requestsRepo.get(userId, good1.id), undefined);
        assert.ok(await requestsRepo.get(userId, good2.id));
        assert.ok(await requestsRepo.get(userId, good3.id));
        await writer.write(good1); // the same record again, now in a healthy batch
        assert.ok(await requestsRepo.get(userId, good1.id));
        await writer.close();
      });

      test("close flushes what is queued, then refuses new writes", async () => {
        const userId = await newUser("writer-close");
        // The first batch is held in flight until the writer is closing, with more queued behind it.
        const inFlight = gate();
        const release = gate();
        const writer = createRequestWriter({
          insertMany: async (records) => {
            inFlight.open();
            await release.wait;
            return requestsRepo.insertMany(records);
          },
        });
        const records = Array.from({ length: 5 }, () => makeRecord(userId));
        const writes = records.map((record) => writer.write(record));
        await inFlight.wait;
        writes.push(writer.write(makeRecord(userId)));
        const closing = writer.close();
        release.open();
        await closing;
        assert.equal(writer.pending(), 0);
        await Promise.all(writes);
        assert.equal((await requestsRepo.list({ userId, limit: 100 })).data.length, 6);
        await assert.rejects(writer.write(makeRecord(userId)), RequestWriterClosedError);
        await writer.close();
      });
    });

    if (backend === "postgres") {
      test("EXPLAIN: a user's list uses the requests indexes, not a sequential scan", async () => {
        const userIds: string[] = [];
        for (let u = 0; u < 8; u++) userIds.push(await newUser(`explain-${u}`));
        const records = userIds.flatMap((userId, u) =>
          Array.from({ length: 500 }, (_, i) =>
            makeRecord(userId, {
              createdAt: new Date(baseTime + i * 1000 + u),
              type: requestTypes[i % requestTypes.length],
              status: i % 10 === 0 ? "failed" : "completed",
            }),
          ),
        );
        await requestsRepo.insertMany(records);
        await handle.database.db.execute(sql`analyze requests`);

        // The same repository on a logging connection, so the test explains exactly the SQL that list() sends.
        const url = handle.options.databaseUrl;
        assert.ok(url);
        const pool = new pg.Pool({ connectionString: url, max: 1 });
        const captured: { sql: string; params: unknown[] }[] = [];
        const loggingDb: Db = drizzle({
          client: pool,
          schema,
          logger: { logQuery: (query, params) => captured.push({ sql: query, params }) },
        });
        try {
          const repo = createRequestRepository(loggingDb);
          const userId = userIds[3] ?? "";
          const first = await repo.list({ userId, limit: 20 });
          await repo.list({ userId, limit: 20, cursor: first.nextCursor ?? undefined });
          await repo.list({ userId, limit: 20, type: "extract" });
          await repo.list({ userId, limit: 20, status: "failed" });
          assert.equal(captured.length, 4);
          for (const [i, query] of captured.entries()) {
            const plan = await pool.query(`explain ${query.sql}`, query.params);
            const text = plan.rows.map((row: Record<string, string>) => row["QUERY PLAN"]).join("\n");
            assert.doesNotMatch(text, /Seq Scan on requests/, text);
            assert.match(text, /(Index Scan|Index Only Scan|Bitmap Index Scan) (using|on) requests_user_\w+_idx/, text);
            if (i < 2) assert.match(text, /requests_user_created_idx/, text);
            // The cursor bounds the index scan itself instead of filtering rows read from the newest on.
            if (i === 1) assert.match(text, /Index Cond: .*ROW\(created_at, id\) < ROW\(/, text);
          }
        } finally {
          await pool.end();
        }
      });
    }

    if (backend === "pglite") {
      // Last in this suite: it closes the shared instance.
      test("data survives closing and reopening the PGlite directory", async () => {
        const userId = await newUser("persist");
        const record = makeRecord(userId);
        await requestsRepo.insertMany([record]);
        await handle.database.close();
        const reopened = await createDatabase(handle.options);
        try {
          await migrateDatabase(reopened);
          assert.equal((await createUserRepository(reopened.db).get(userId))?.id, userId);
          assert.deepEqual(await createRequestRepository(reopened.db).get(userId, record.id), record);
        } finally {
          await reopened.close();
        }
      });
    }
  });
}
