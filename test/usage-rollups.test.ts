import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { createDatabase, type Database, isRowRejection, type StatementRunner } from "../src/db/client.ts";
import {
  latencyBucketBoundsMs,
  latencyBucketCount,
  latencyBucketOf,
  latencyPercentileMs,
} from "../src/db/latency-histogram.ts";
import { createOverviewRepository, type OverviewRepository, splitRange } from "../src/db/overview.ts";
import { createRequestWriter } from "../src/db/request-writer.ts";
import { createRequestRepository, reducedRecord } from "../src/db/requests.ts";
import { createRollupFolder } from "../src/db/rollup-folder.ts";
import { requests } from "../src/db/schema.ts";
import type { RequestRecord } from "../src/db/types.ts";
import { createUsageRepository } from "../src/db/usage.ts";
import { foldBatchLimit, type RollupTable, rollupTables } from "../src/db/usage-rollups.ts";
import { createUserRepository } from "../src/db/users.ts";
import { createRandom } from "../src/providers/mock-model/seeded.ts";
import { openTestDatabase, queryRows, storageBackends, type TestDatabase } from "./helpers/databases.ts";
import { requestRecord } from "./helpers/records.ts";
import { rebuildRollups } from "./helpers/rollup-backfill.ts";

const hourMs = 3_600_000;
const dayMs = 86_400_000;
const at = (iso: string) => new Date(iso);

const models = [
  { model: "gpt-4o-mini", provider: "openai" },
  { model: "gpt-4o", provider: "openai" },
  { model: "claude-sonnet-4-5", provider: "anthropic" },
] as const;
const types = ["chat", "summarize", "translate", "embed"] as const;

/** `count` requests of the users, spread from `start` over `hours`, with every status, cache hits and unpriced ones. */
function spreadRecords(userIds: readonly string[], start: Date, hours: number, count: number, seed: number) {
  const random = createRandom(seed);
  return Array.from({ length: count }, (_, i) => {
    const cached = i % 5 === 0;
    const { model, provider } = models[i % models.length] as (typeof models)[number];
    return requestRecord(userIds[i % userIds.length] as string, {
      model,
      provider,
      type: types[(i >> 1) % types.length],
      status: i % 7 === 0 ? "failed" : i % 11 === 0 ? "cancelled" : "completed",
      cached,
      promptTokens: Math.floor(random() * 2000),
      completionTokens: Math.floor(random() * 500),
      totalTokens: 0,
      costUsd: i % 13 === 0 ? null : Math.round(random() * 1e6) / 1e9,
      latencyMs: cached ? Math.floor(random() * 3) : Math.floor(Math.exp(3 + random() * 8)),
      createdAt: new Date(start.getTime() + Math.floor(random() * hours * hourMs)),
    });
  }).map((record) => ({ ...record, totalTokens: record.promptTokens + record.completionTokens }));
}

interface Sums {
  requests: number;
  errors: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  latencyMinMs: number;
  latencyMaxMs: number;
  histogram: number[];
}

const keyColumns = (table: RollupTable) => [table.period, ...table.dimensions];

/** What a rollup table must hold for these records, by key (`period ms|dimension|…`). */
function expectedRollup(table: RollupTable, records: readonly RequestRecord[]): Map<string, Sums> {
  const rows = new Map<string, Sums>();
  for (const record of records) {
    const step = table.period === "hour" ? hourMs : dayMs;
    const start = Math.floor(record.createdAt.getTime() / step) * step;
    const values: Record<string, string> = {
      user_id: record.userId,
      model: record.model,
      provider: record.provider,
      type: record.type,
    };
    const key = [start, ...table.dimensions.map((dimension) => values[dimension])].join("|");
    const row = rows.get(key) ?? {
      requests: 0,
      errors: 0,
      cacheHits: 0,
      promptTokens: 0,
      completionTokens: 0,
      totalTokens: 0,
      costUsd: 0,
      latencyMinMs: Number.POSITIVE_INFINITY,
      latencyMaxMs: Number.NEGATIVE_INFINITY,
      histogram: new Array<number>(latencyBucketCount).fill(0),
    };
    row.requests++;
    if (record.status === "failed") row.errors++;
    if (record.cached) row.cacheHits++;
    row.promptTokens += record.promptTokens;
    row.completionTokens += record.completionTokens;
    row.totalTokens += record.totalTokens;
    row.costUsd += record.costUsd ?? 0;
    row.latencyMinMs = Math.min(row.latencyMinMs, record.latencyMs);
    row.latencyMaxMs = Math.max(row.latencyMaxMs, record.latencyMs);
    (row.histogram[latencyBucketOf(record.latencyMs)] as number)++;
    rows.set(key, row);
  }
  return rows;
}

async function storedRollup(database: Database, table: RollupTable): Promise<Map<string, Sums>> {
  const key = keyColumns(table)
    .map((column, i) => (i === 0 ? `(extract(epoch from ${column}) * 1000)::bigint::text` : column))
    .join(" || '|' || ");
  const rows = await queryRows(
    database,
    sql.raw(`select ${key} as key, requests::float8 as requests, errors::float8 as errors,
      cache_hits::float8 as cache_hits, prompt_tokens::float8 as prompt_tokens,
      completion_tokens::float8 as completion_tokens, total_tokens::float8 as total_tokens, cost_usd,
      latency_min_ms, latency_max_ms, latency_histogram::float8[] as histogram from ${table.name}`),
  );
  return new Map(
    rows.map((row) => [
      String(row.key),
      {
        requests: Number(row.requests),
        errors: Number(row.errors),
        cacheHits: Number(row.cache_hits),
        promptTokens: Number(row.prompt_tokens),
        completionTokens: Number(row.completion_tokens),
        totalTokens: Number(row.total_tokens),
        costUsd: Number(row.cost_usd),
        latencyMinMs: Number(row.latency_min_ms),
        latencyMaxMs: Number(row.latency_max_ms),
        histogram: (row.histogram as number[]).map(Number),
      },
    ]),
  );
}

/** Folds every queued batch into the rollups, as the service does before it reads an overview. */
function foldQueued(database: Database): Promise<void> {
  return createRollupFolder({ runner: database.statements, delayMs: 0 }).foldNow();
}

async function queuedBatches(database: Database): Promise<number> {
  const [row] = await queryRows(database, sql`select count(*)::int as n from usage_rollup_queue`);
  return Number(row?.n);
}

/** Once the queue is folded, every rollup table holds exactly the sums of `records`. */
async function assertRollupsOf(database: Database, records: readonly RequestRecord[]): Promise<void> {
  await foldQueued(database);
  assert.equal(await queuedBatches(database), 0, "nothing left queued");
  for (const table of Object.values(rollupTables)) {
    const stored = await storedRollup(database, table);
    const expected = expectedRollup(table, records);
    assert.deepEqual([...stored.keys()].sort(), [...expected.keys()].sort(), `${table.name}: its rows`);
    for (const [key, want] of expected) {
      const got = stored.get(key) as Sums;
      assert.ok(
        Math.abs(got.costUsd - want.costUsd) < 1e-9,
        `${table.name} ${key}: cost ${got.costUsd} ≠ ${want.costUsd}`,
      );
      assert.deepEqual({ ...got, costUsd: 0 }, { ...want, costUsd: 0 }, `${table.name} ${key}`);
    }
  }
}

/** A statement runner that counts the statements sent through it. */
function counting(runner: StatementRunner): StatementRunner & { statements: number } {
  const counted = {
    statements: 0,
    query(query: Parameters<StatementRunner["query"]>[0]) {
      counted.statements++;
      return runner.query(query);
    },
  };
  return counted;
}

/** The exact percentile by nearest rank, the reference for the histogram's estimate. */
function exactPercentile(latencies: readonly number[], quantile: number): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(quantile * sorted.length) - 1)] as number;
}

/** Within the histogram's resolution: one bucket's width (26% above 10 ms), at least 1 ms. */
function assertWithinResolution(estimate: number | null, exact: number, label: string): void {
  assert.notEqual(estimate, null, label);
  const allowed = Math.max(1, exact * 0.26);
  assert.ok(Math.abs((estimate as number) - exact) <= allowed, `${label}: ${estimate} vs exact ${exact}`);
}

describe("latency histogram (no database)", () => {
  test("buckets: 0 ms alone, then the bounds, the last one open", () => {
    assert.equal(latencyBucketCount, 57);
    assert.equal(latencyBucketOf(0), 0);
    assert.equal(latencyBucketOf(1), 1);
    assert.equal(latencyBucketOf(7), 6);
    assert.equal(latencyBucketOf(8), 7);
    assert.equal(latencyBucketOf(10_000_000), 56);
    // Latencies are whole ms: two in one bucket differ by at most 1 ms below 10 ms, by less than 26% above.
    for (let i = 1; i < latencyBucketBoundsMs.length; i++) {
      const lower = latencyBucketBoundsMs[i - 1] as number;
      const highest = (latencyBucketBoundsMs[i] as number) - 1;
      assert.ok(
        lower < 10 ? highest - lower <= 1 : highest - lower < 0.26 * lower,
        `bucket ${i}: ${lower}..${highest}`,
      );
    }
  });

  test("percentiles: exact for one value, within a bucket for a spread, null for nothing", () => {
    const one = new Array<number>(latencyBucketCount).fill(0);
    one[latencyBucketOf(812)] = 1;
    assert.equal(latencyPercentileMs({ histogram: one, minMs: 812, maxMs: 812 }, 0.5), 812);
    assert.equal(latencyPercentileMs({ histogram: one, minMs: 812, maxMs: 812 }, 0.95), 812);
    assert.equal(
      latencyPercentileMs({ histogram: new Array(latencyBucketCount).fill(0), minMs: 0, maxMs: 0 }, 0.5),
      null,
    );

    const random = createRandom(7);
    for (const spread of [1, 3, 8]) {
      const latencies = Array.from({ length: 2000 }, () => Math.floor(Math.exp(2 + random() * spread)));
      const histogram = new Array<number>(latencyBucketCount).fill(0);
      for (const latency of latencies) (histogram[latencyBucketOf(latency)] as number)++;
      const summary = { histogram, minMs: Math.min(...latencies), maxMs: Math.max(...latencies) };
      for (const quantile of [0.5, 0.95]) {
        assertWithinResolution(
          latencyPercentileMs(summary, quantile),
          exactPercentile(latencies, quantile),
          `p${quantile * 100} of e^(2..${2 + spread})`,
        );
      }
    }
  });

  test("a range splits into whole UTC days and the hours around them", () => {
    const { hourly, daily } = rollupTables;
    const parts = (from: string, to: string) =>
      splitRange(at(from), at(to), hourly, daily).map((part) => [
        part.table.period,
        part.from.toISOString().slice(0, 13),
        part.to.toISOString().slice(0, 13),
      ]);
    assert.deepEqual(parts("2026-03-01T00:00Z", "2026-03-03T00:00Z"), [["day", "2026-03-01T00", "2026-03-03T00"]]);
    assert.deepEqual(parts("2026-03-01T05:00Z", "2026-03-03T07:00Z"), [
      ["day", "2026-03-02T00", "2026-03-03T00"],
      ["hour", "2026-03-01T05", "2026-03-02T00"],
      ["hour", "2026-03-03T00", "2026-03-03T07"],
    ]);
    // No whole day inside: hours only.
    assert.deepEqual(parts("2026-03-01T05:00Z", "2026-03-02T03:00Z"), [["hour", "2026-03-01T05", "2026-03-02T03"]]);
  });
});

for (const backend of storageBackends) {
  describe(`usage rollups on ${backend}`, () => {
    let handle: TestDatabase;
    let database: Database;
    let repository: ReturnType<typeof createRequestRepository>;
    let overview: OverviewRepository;
    let alice: string;
    let bob: string;
    /** Every request stored in this database: what the rollups must add up to. */
    const stored: RequestRecord[] = [];

    before(async () => {
      handle = await openTestDatabase(backend);
      database = handle.database;
      repository = createRequestRepository(database.db, database.writer);
      overview = createOverviewRepository(database.db, () => foldQueued(database));
      const users = createUserRepository(database.db);
      const created = await Promise.all([
        users.create({ email: `alice-${backend}@rollups.test` }),
        users.create({ email: `bob-${backend}@rollups.test` }),
      ]);
      if (!created[0]?.ok || !created[1]?.ok) throw new Error("could not create the users");
      alice = created[0].user.id;
      bob = created[1].user.id;
    });

    after(async () => {
      await handle?.close();
    });

    test("the SQL bucket function and latency-histogram.ts agree on every bound", async () => {
      const probes = [0, ...latencyBucketBoundsMs.flatMap((bound) => [bound - 1, bound, bound + 1]), 2_000_000_000];
      const rows = await queryRows(
        database,
        sql.raw(`select ms, usage_latency_bucket(ms) as bucket from unnest(array[${probes.join(",")}]) as ms`),
      );
      for (const row of rows) assert.equal(Number(row.bucket), latencyBucketOf(Number(row.ms)), `${row.ms} ms`);
    });

    test("one statement stores a batch and queues it; a fold adds it to every rollup table; a retry adds nothing", async () => {
      // Eight hours across a UTC midnight, two users, three models, four types, every status.
      const batch = spreadRecords([alice, bob], at("2026-03-09T20:00:00Z"), 8, 300, 1);
      const writer = counting(database.writer);
      const counted = createRequestRepository(database.db, writer);
      assert.equal(await counted.insertMany(batch), batch.length);
      assert.equal(writer.statements, 1, "the requests and their queued sums in one statement");
      assert.equal(await queuedBatches(database), 1);
      stored.push(...batch);
      await assertRollupsOf(database, stored);

      // The same batch again (a retry after a lost answer): no row inserted, nothing queued, nothing added.
      assert.equal(await counted.insertMany(batch), 0);
      assert.equal(await queuedBatches(database), 0);
      // A later batch into the same hours adds to the same rows.
      const more = spreadRecords([alice], at("2026-03-09T22:00:00Z"), 3, 40, 2);
      assert.equal(await counted.insertMany([...more, ...batch.slice(0, 5)]), more.length);
      stored.push(...more);
      await assertRollupsOf(database, stored);
    });

    test("a row the database refuses: its neighbours commit, and its reduced record counts once", async () => {
      const salvaged: string[] = [];
      const writer = createRequestWriter({
        insertMany: (rows) => repository.insertMany(rows),
        isRowError: isRowRejection,
        salvage: reducedRecord,
        onSalvaged: (record) => salvaged.push(record.id),
      });
      const clean = spreadRecords([bob], at("2026-03-10T01:00:00Z"), 2, 6, 3);
      // Tokens past PostgreSQL's integer: the whole statement fails, rollups included, until the row is alone.
      const poisoned = requestRecord(bob, {
        createdAt: at("2026-03-10T01:30:00Z"),
        promptTokens: 2 ** 40,
        totalTokens: 2 ** 40 + 7,
        latencyMs: 321,
      });
      const all = [...clean.slice(0, 3), poisoned, ...clean.slice(3)];
      await Promise.all(all.map((record) => writer.write(record)));
      await writer.close();
      assert.deepEqual(salvaged, [poisoned.id]);
      stored.push(...clean, reducedRecord(poisoned));
      await assertRollupsOf(database, stored);
    });

    test("a fold that fails half-way leaves its batches queued, and the next fold counts them once", async () => {
      const batch = spreadRecords([alice, bob], at("2026-03-10T03:00:00Z"), 2, 50, 5);
      assert.equal(await repository.insertMany(batch), batch.length);
      stored.push(...batch);
      // The fold's transaction dies before it commits: the rollups' upserts and the queue's delete are undone together.
      await database.writer.query({ text: "begin", values: [] });
      await database.writer.query({ text: "select usage_rollups_fold(200)", values: [] });
      await database.writer.query({ text: "rollback", values: [] });
      assert.equal(await queuedBatches(database), 1);
      await assertRollupsOf(database, stored);
    });

    test("stored batches are folded in the background soon after, and what is left when it closes", async () => {
      const folds: unknown[] = [];
      const folder = createRollupFolder({ runner: database.statements, delayMs: 10, onError: (e) => folds.push(e) });
      const first = spreadRecords([alice], at("2026-03-10T04:00:00Z"), 1, 20, 6);
      await repository.insertMany(first);
      stored.push(...first);
      folder.stored();
      // No read asks for it: the fold starts on its own within the delay.
      for (let waited = 0; (await queuedBatches(database)) > 0; waited++) {
        assert.ok(waited < 500, "the queued batch is folded");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // More batches than one fold takes (foldBatchLimit): the fold goes on until the queue is empty.
      const last = spreadRecords([bob], at("2026-03-10T04:00:00Z"), 1, foldBatchLimit + 1, 7);
      for (const record of last) await repository.insertMany([record]);
      stored.push(...last);
      assert.equal(await queuedBatches(database), foldBatchLimit + 1);
      await folder.close();
      assert.equal(await queuedBatches(database), 0, "closing folds what is queued");
      assert.deepEqual(folds, []);
      await assertRollupsOf(database, stored);
    });

    if (backend === "postgres") {
      test("two instances storing and folding into the same rows at once neither deadlock nor lose a sum", async () => {
        const other = await createDatabase(handle.options);
        try {
          const writers = [repository, createRequestRepository(other.db, other.writer)];
          const folders = [database, other].map((db) => createRollupFolder({ runner: db.statements, delayMs: 0 }));
          for (let round = 0; round < 10; round++) {
            // The same hours, users, models and types in both batches, in opposite orders.
            const batches = writers.map((_, i) => {
              const batch = spreadRecords([alice, bob], at("2026-03-10T02:00:00Z"), 3, 120, 100 + round * 2 + i);
              return i === 0 ? batch : batch.reverse();
            });
            // Each instance folds while the other stores: folds take turns, and a batch queued meanwhile waits.
            const [inserted] = await Promise.all([
              Promise.all(writers.map((writer, i) => writer.insertMany(batches[i] ?? []))),
              ...folders.map((folder) => folder.foldNow()),
            ]);
            assert.deepEqual(inserted, [120, 120]);
            stored.push(...batches.flat());
          }
          await assertRollupsOf(database, stored);
        } finally {
          await other.close();
        }
      });
    }

    test("the migration's backfill builds the same rollups from the requests table", async () => {
      // Stored the way a version without rollups stored them: a plain INSERT, nothing rolled up.
      const old = spreadRecords([alice, bob], at("2026-03-01T00:00:00Z"), 24 * 5, 200, 4);
      await database.db.insert(requests).values(old);
      stored.push(...old);
      await rebuildRollups(database);
      await assertRollupsOf(database, stored);
    });

    test("hours and days are UTC whatever the session's and the process's time zone", async () => {
      const processZone = process.env.TZ;
      // +05:30: 18:45 UTC is already the next day there, and half past a local hour.
      process.env.TZ = "Asia/Kolkata";
      const zoned =
        backend === "postgres"
          ? await createDatabase({
              databaseUrl: `${handle.options.databaseUrl}?options=${encodeURIComponent("-c TimeZone=Asia/Kolkata")}`,
              dataDir: "",
            })
          : database;
      try {
        if (backend === "pglite") await database.writer.query({ text: "set time zone 'Asia/Kolkata'", values: [] });
        const [zone] = await queryRows(zoned, sql`select current_setting('TimeZone') as zone`);
        assert.equal(zone?.zone, "Asia/Kolkata");
        const late = requestRecord(alice, { createdAt: at("2026-03-10T18:45:00Z"), latencyMs: 77 });
        assert.equal(await createRequestRepository(zoned.db, zoned.writer).insertMany([late]), 1);
        stored.push(late);
        await assertRollupsOf(database, stored);

        const day = await createOverviewRepository(zoned.db, () => foldQueued(zoned)).overview({
          from: at("2026-03-10T00:00:00Z"),
          to: at("2026-03-11T00:00:00Z"),
          bucket: "hour",
          userId: alice,
          byUser: false,
        });
        assert.equal(day.series.length, 24);
        const point = day.series.find(
          (p) => p.requests > 0 && p.start.getTime() === at("2026-03-10T18:00:00Z").getTime(),
        );
        assert.ok(point, "the request is in the 18:00 UTC bucket");
        assert.equal(point.latencyP50Ms, 77);
      } finally {
        if (backend === "pglite") await database.writer.query({ text: "reset time zone", values: [] });
        if (zoned !== database) await zoned.close();
        if (processZone === undefined) delete process.env.TZ;
        else process.env.TZ = processZone;
      }
    });

    test("totals over whole UTC days equal the usage sums of GET /me/usage, day by day too", async () => {
      const usage = createUsageRepository(database.db);
      for (const userId of [alice, bob]) {
        const range = { userId, from: at("2026-03-01T00:00:00Z"), to: at("2026-03-12T00:00:00Z") };
        const sums = await usage.totals(range);
        const answer = await overview.overview({ ...range, bucket: "day", byUser: false });
        assert.ok(sums.requests > 0);
        assert.deepEqual(
          {
            requests: answer.totals.requests,
            promptTokens: answer.totals.promptTokens,
            completionTokens: answer.totals.completionTokens,
            totalTokens: answer.totals.totalTokens,
            costUsd: answer.totals.costUsd,
            cacheHits: answer.totals.cacheHits,
          },
          sums,
        );
        const days = await usage.grouped(range, "day");
        for (const group of days) {
          const point = answer.series.find((p) => p.start.toISOString().slice(0, 10) === group.key);
          assert.equal(point?.requests, group.requests, group.key);
          assert.equal(point?.costUsd, group.costUsd, group.key);
        }
      }
    });

    test("every bucket of the range is in the series, empty ones as zeros; edges count only their hours", async () => {
      const from = at("2026-03-09T20:00:00Z");
      const to = at("2026-03-11T03:00:00Z");
      const inRange = stored.filter((r) => r.userId === alice && r.createdAt >= from && r.createdAt < to);

      const hours = await overview.overview({ from, to, bucket: "hour", userId: alice, byUser: false });
      assert.equal(hours.series.length, 31);
      assert.deepEqual(
        hours.series.map((p) => p.start.getTime()),
        Array.from({ length: 31 }, (_, i) => from.getTime() + i * hourMs),
      );
      const empty = hours.series.find((p) => p.start.getTime() === at("2026-03-10T12:00:00Z").getTime());
      assert.deepEqual(empty, {
        start: at("2026-03-10T12:00:00Z"),
        requests: 0,
        promptTokens: 0,
        completionTokens: 0,
        totalTokens: 0,
        costUsd: 0,
        cacheHits: 0,
        errors: 0,
        cacheHitRate: 0,
        errorRate: 0,
        latencyP50Ms: null,
        latencyP95Ms: null,
      });

      const days = await overview.overview({ from, to, bucket: "day", userId: alice, byUser: false });
      assert.deepEqual(
        days.series.map((p) => p.start.toISOString()),
        ["2026-03-09T00:00:00.000Z", "2026-03-10T00:00:00.000Z", "2026-03-11T00:00:00.000Z"],
      );
      for (const answer of [hours, days]) {
        assert.equal(answer.totals.requests, inRange.length);
        assert.equal(answer.totals.errors, inRange.filter((r) => r.status === "failed").length);
        assert.equal(answer.totals.cacheHits, inRange.filter((r) => r.cached).length);
        assert.equal(
          answer.totals.totalTokens,
          inRange.reduce((sum, r) => sum + r.totalTokens, 0),
        );
        assert.equal(
          answer.series.reduce((sum, p) => sum + p.requests, 0),
          inRange.length,
        );
        assert.equal(answer.totals.errorRate, answer.totals.errors / answer.totals.requests);
        assert.equal(answer.totals.cacheHitRate, answer.totals.cacheHits / answer.totals.requests);
      }
      // The breakdowns partition the totals, most requests first.
      for (const breakdown of [days.byModel, days.byProvider, days.byType]) {
        assert.equal(
          breakdown.reduce((sum, entry) => sum + entry.requests, 0),
          inRange.length,
        );
        for (let i = 1; i < breakdown.length; i++) {
          assert.ok((breakdown[i - 1]?.requests ?? 0) >= (breakdown[i]?.requests ?? 0));
        }
      }
      assert.deepEqual(
        days.byModel.map((entry) => [entry.key, entry.requests]).sort(),
        models
          .map(({ model }) => [model, inRange.filter((r) => r.model === model).length] as [string, number])
          .filter(([, count]) => count > 0)
          .sort(),
      );
    });

    test("latency p50 and p95 from the histograms are within their resolution of the exact ones", async () => {
      const random = createRandom(11);
      const start = at("2026-04-01T00:00:00Z");
      const records = Array.from({ length: 1500 }, (_, i) =>
        requestRecord(bob, {
          model: i % 3 === 0 ? "slow-model" : "fast-model",
          createdAt: new Date(start.getTime() + (i % 72) * hourMs),
          latencyMs: i % 3 === 0 ? Math.floor(2000 + random() * 20_000) : Math.floor(Math.exp(3 + random() * 4)),
        }),
      );
      await repository.insertMany(records);
      stored.push(...records);
      const answer = await overview.overview({
        from: start,
        to: new Date(start.getTime() + 3 * dayMs),
        bucket: "day",
        userId: bob,
        byUser: false,
      });
      const latencies = (filter: (r: RequestRecord) => boolean) => records.filter(filter).map((r) => r.latencyMs);
      for (const [label, figures, values] of [
        ["totals", answer.totals, latencies(() => true)],
        ["slow-model", answer.byModel.find((e) => e.key === "slow-model"), latencies((r) => r.model === "slow-model")],
        ["fast-model", answer.byModel.find((e) => e.key === "fast-model"), latencies((r) => r.model === "fast-model")],
      ] as const) {
        assertWithinResolution(figures?.latencyP50Ms ?? null, exactPercentile(values, 0.5), `${label} p50`);
        assertWithinResolution(figures?.latencyP95Ms ?? null, exactPercentile(values, 0.95), `${label} p95`);
      }
    });

    test("everyone's numbers: the totals of all users, broken down by user with their email", async () => {
      const from = at("2026-03-01T00:00:00Z");
      const to = at("2026-03-12T00:00:00Z");
      const inRange = stored.filter((r) => r.createdAt >= from && r.createdAt < to);
      const everyone = await overview.overview({ from, to, bucket: "day", byUser: true });
      assert.equal(everyone.totals.requests, inRange.length);
      assert.deepEqual(
        everyone.byUser?.map((entry) => [entry.key, entry.email, entry.requests]).sort(),
        [
          [alice, `alice-${backend}@rollups.test`, inRange.filter((r) => r.userId === alice).length],
          [bob, `bob-${backend}@rollups.test`, inRange.filter((r) => r.userId === bob).length],
        ].sort(),
      );
      // The same range with partial days at both ends, hour buckets: the edges come from the hourly tables.
      const partFrom = at("2026-03-09T21:00:00Z");
      const partTo = at("2026-03-10T02:00:00Z");
      const part = await overview.overview({ from: partFrom, to: partTo, bucket: "hour", byUser: true });
      const inPart = stored.filter((r) => r.createdAt >= partFrom && r.createdAt < partTo);
      assert.equal(part.totals.requests, inPart.length);
      assert.equal(
        part.byUser?.reduce((sum, entry) => sum + entry.requests, 0),
        inPart.length,
      );
      // One user asked for by user: that user's totals, with the email.
      const one = await overview.overview({ from, to, bucket: "day", userId: alice, byUser: true });
      assert.deepEqual(
        one.byUser?.map((entry) => [entry.key, entry.email, entry.requests]),
        [[alice, `alice-${backend}@rollups.test`, inRange.filter((r) => r.userId === alice).length]],
      );
      // Deleting a request keeps its usage.
      const victim = stored.find((r) => r.userId === alice && r.createdAt >= from && r.createdAt < to);
      assert.ok(victim && (await repository.softDelete(alice, victim.id)));
      assert.equal(
        (await overview.overview({ from, to, bucket: "day", byUser: false })).totals.requests,
        inRange.length,
      );
    });
  });
}
