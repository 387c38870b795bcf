import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { createRequestRepository } from "../src/db/requests.ts";
import type { RequestRecord } from "../src/db/types.ts";
import { createUsageRepository, groupedUsageQuery, sumUsage, type UsageRepository } from "../src/db/usage.ts";
import { createUserRepository } from "../src/db/users.ts";
import { requestRecord } from "./helpers/records.ts";
import { openTestDatabase, storageBackends, type TestDatabase } from "./helpers/databases.ts";

const day = (iso: string) => new Date(`${iso}T00:00:00.000Z`);

function record(userId: string, overrides: Partial<RequestRecord>): RequestRecord {
  return requestRecord(userId, { ...overrides, createdAt: overrides.createdAt ?? day("2026-03-10") });
}

for (const backend of storageBackends) {
  describe(`usage sums on ${backend}`, () => {
    let handle: TestDatabase;
    let usage: UsageRepository;
    let alice: string;
    let bob: string;

    before(async () => {
      handle = await openTestDatabase(backend);
      const users = createUserRepository(handle.database.db);
      const created = await Promise.all([
        users.create({ email: "alice@usage.test" }),
        users.create({ email: "bob@usage.test" }),
      ]);
      if (!created[0]?.ok || !created[1]?.ok) throw new Error("could not create the users");
      alice = created[0].user.id;
      bob = created[1].user.id;
      usage = createUsageRepository(handle.database.db);
      await createRequestRepository(handle.database.db).insertMany([
        // February: outside March, but in the month spend of February.
        record(alice, { createdAt: new Date("2026-02-28T23:59:59.999Z"), costUsd: 1 }),
        // 1 March, first instant: in.
        record(alice, { createdAt: day("2026-03-01"), promptTokens: 100, completionTokens: 50, totalTokens: 150 }),
        record(alice, { createdAt: new Date("2026-03-01T12:00:00Z"), model: "gpt-4o", costUsd: 0.002 }),
        // A cache hit: a request, no cost.
        record(alice, { createdAt: new Date("2026-03-01T13:00:00Z"), cached: true, costUsd: 0 }),
        // Deleted later: its content is gone, its spend still counts.
        record(alice, {
          createdAt: new Date("2026-03-05T08:00:00Z"),
          input: null,
          output: null,
          deletedAt: new Date("2026-03-06T00:00:00Z"),
          costUsd: 0.5,
        }),
        // Failed with no usage, and a model without a price (cost null).
        record(alice, {
          createdAt: new Date("2026-03-05T09:00:00Z"),
          status: "failed",
          promptTokens: 0,
          completionTokens: 0,
          totalTokens: 0,
          costUsd: null,
        }),
        record(alice, { createdAt: new Date("2026-03-31T23:59:59.999Z"), model: "text-embedding-3-small" }),
        // April: outside.
        record(alice, { createdAt: day("2026-04-01"), costUsd: 7 }),
        // Someone else's.
        record(bob, { createdAt: new Date("2026-03-05T10:00:00Z"), costUsd: 3 }),
      ]);
    });
    after(() => handle.close());

    const march = () => ({ userId: alice, from: day("2026-03-01"), to: day("2026-04-01") });

    test("per day: requests, tokens, cost and cache hits, deleted and failed requests included", async () => {
      const rows = await usage.grouped(march(), "day");
      assert.deepEqual(rows, [
        {
          key: "2026-03-01",
          requests: 3,
          promptTokens: 120,
          completionTokens: 60,
          totalTokens: 180,
          costUsd: 0.002123,
          cacheHits: 1,
        },
        {
          key: "2026-03-05",
          requests: 2,
          promptTokens: 10,
          completionTokens: 5,
          totalTokens: 15,
          costUsd: 0.5,
          cacheHits: 0,
        },
        {
          key: "2026-03-31",
          requests: 1,
          promptTokens: 10,
          completionTokens: 5,
          totalTokens: 15,
          costUsd: 0.000123,
          cacheHits: 0,
        },
      ]);
    });

    test("per model, and totals that match the groups", async () => {
      const rows = await usage.grouped(march(), "model");
      assert.deepEqual(
        rows.map((row) => [row.key, row.requests, row.costUsd]),
        [
          ["gpt-4o", 1, 0.002],
          ["gpt-4o-mini", 4, 0.500123],
          ["text-embedding-3-small", 1, 0.000123],
        ],
      );
      const totals = await usage.totals(march());
      assert.deepEqual(totals, sumUsage(rows));
      assert.deepEqual(totals, {
        requests: 6,
        promptTokens: 140,
        completionTokens: 70,
        totalTokens: 210,
        costUsd: 0.502246,
        cacheHits: 1,
      });
    });

    test("the month's spend seeds the budget; an empty range is all zeros", async () => {
      assert.equal(await usage.monthSpendUsd(alice, day("2026-03-01")), 0.502246);
      assert.equal(await usage.monthSpendUsd(alice, day("2026-02-01")), 1);
      assert.equal(await usage.monthSpendUsd(bob, day("2026-03-01")), 3);
      assert.deepEqual(await usage.grouped({ ...march(), from: day("2025-01-01"), to: day("2025-02-01") }, "day"), []);
      assert.equal((await usage.totals({ ...march(), from: day("2025-01-01"), to: day("2025-02-01") })).requests, 0);
    });
  });
}

describe("usage over a long history (PostgreSQL, 100k requests)", () => {
  let handle: TestDatabase;
  let client: pg.Client;
  let heavy: string;

  before(async () => {
    handle = await openTestDatabase("postgres");
    const users = createUserRepository(handle.database.db);
    const [first, second] = await Promise.all([
      users.create({ email: "heavy@usage.test" }),
      users.create({ email: "neighbour@usage.test" }),
    ]);
    if (!first?.ok || !second?.ok) throw new Error("could not create the users");
    heavy = first.user.id;
    const url = handle.options.databaseUrl;
    if (!url) throw new Error("postgres backend without a URL");
    client = new pg.Client({ connectionString: url });
    await client.connect();
    // 100k requests of one user spread over 400 days, and 100k of a neighbour, in one statement each.
    for (const [userId, offset] of [
      [heavy, 0],
      [second.user.id, 100_000],
    ] as const) {
      await client.query(
        `insert into requests (id, user_id, type, model, provider, status, prompt_tokens, completion_tokens,
                               total_tokens, cost_usd, cached, created_at)
         select 'req_' || lpad((g + $2)::text, 21, '0'), $1, 'chat',
                (array['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'])[g % 3 + 1], 'openai', 'completed',
                10, 5, 15, 0.00001, g % 7 = 0,
                timestamptz '2026-03-31 12:00:00Z' - (g % 400) * interval '1 day' - (g % 3600) * interval '1 second'
         from generate_series(1, 100000) as g`,
        [userId, offset],
      );
    }
    // What autovacuum does on a live table: statistics, and the visibility map that index-only scans rely on.
    await client.query("vacuum analyze requests");
  });
  after(async () => {
    await client.end();
    await handle.close();
  });

  async function plan(groupBy: "day" | "model", from: string, to: string) {
    const query = groupedUsageQuery(handle.database.db, { userId: heavy, from: day(from), to: day(to) }, groupBy);
    const { sql, params } = query.toSQL();
    const result = await client.query(`explain (analyze, format json) ${sql}`, params);
    return JSON.stringify(result.rows[0]["QUERY PLAN"]);
  }

  for (const [groupBy, from, to] of [
    ["day", "2026-03-01", "2026-04-01"],
    ["model", "2026-03-01", "2026-04-01"],
    ["day", "2026-01-01", "2026-04-01"],
  ] as const) {
    test(`group_by=${groupBy} from ${from} to ${to} is an index-only scan that never reads the table`, async () => {
      const text = await plan(groupBy, from, to);
      assert.match(text, /"Node Type":"Index Only Scan"/, text);
      assert.match(text, /"Index Name":"requests_user_usage_idx"/, text);
      assert.doesNotMatch(text, /Seq Scan/, text);
      assert.match(text, /"Heap Fetches":0/, `no row was read from the table: ${text}`);
    });
  }

  test("the sums over the long history are right", async () => {
    const usage = createUsageRepository(handle.database.db);
    // 2026-03-01 .. 2026-03-31: offsets 0..30 days back from 2026-03-31, i.e. g % 400 in 0..30; minus up to an
    // hour, offset 30 (12:00 on 1 March minus < 1 h) stays inside.
    const totals = await usage.totals({ userId: heavy, from: day("2026-03-01"), to: day("2026-04-01") });
    let expected = 0;
    let hits = 0;
    for (let g = 1; g <= 100_000; g++) {
      if (g % 400 <= 30) {
        expected++;
        if (g % 7 === 0) hits++;
      }
    }
    assert.equal(totals.requests, expected);
    assert.equal(totals.totalTokens, expected * 15);
    assert.equal(totals.cacheHits, hits);
    assert.ok(Math.abs(totals.costUsd - expected * 0.00001) < 1e-9, String(totals.costUsd));
    const byDay = await usage.grouped({ userId: heavy, from: day("2026-03-01"), to: day("2026-04-01") }, "day");
    assert.equal(byDay.length, 31);
    assert.deepEqual(sumUsage(byDay), totals);
  });
});
