import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { createSingleFlight } from "../src/requests/single-flight.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { pollUntil } from "./helpers/processes.ts";
import { type RedisForTest, redisFor, redisModes } from "./helpers/redis-modes.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

/** Identical requests in flight together share one upstream call; each is still a request of its own. */
describe("coalescing identical requests", () => {
  let service: TestService;
  let user: { id: string; key: string };

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: true });
    user = await service.createUser();
  });
  after(() => service.close());

  const chatCalls = () => service.upstream?.stats().requests["POST /v1/chat/completions"] ?? 0;

  test("50 identical concurrent requests reach the upstream once and are stored 50 times", async () => {
    service.upstream!.setFaults({ latencyMs: 300 });
    const before = chatCalls();
    const body = { type: "summarize", input: `together ${Date.now()}` };
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => service.call("POST", "/requests", { key: user.key, body })),
    );
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([201]));
    assert.equal(chatCalls() - before, 1, "one upstream call");
    assert.equal(new Set(answers.map((a) => a.body.id)).size, 50, "50 requests of their own");
    assert.equal(new Set(answers.map((a) => JSON.stringify(a.body.output))).size, 1, "all the same answer");
    const paid = answers.filter((a) => a.body.cached === false);
    assert.equal(paid.length, 1, "one of them paid for the call");
    assert.ok(paid[0]!.body.cost_usd > 0);
    const list = await service.call("GET", "/requests?limit=100", { key: user.key });
    const stored = list.body.data.filter((r: { id: string }) => answers.some((a) => a.body.id === r.id));
    assert.equal(stored.length, 50);
  });

  test("requests sharing a call hold no tokens of their own: the user's other requests still fit in tpm", async () => {
    // Room for two calls of max_tokens 100 (~160 tokens reserved each: the output, the prompt's ~20 bytes and the
    // chat template's 40), not for two and a different request of ~120 (max_tokens 60): while 10 identical requests
    // share one call, the different one fits only if the nine waiting ones reserved nothing. The rpm limit never
    // binds: its window shows, on GET /me, how many of the 10 have been admitted.
    const limited = await service.createUser();
    const rpm = 1_000;
    const patched = await service.call("PATCH", `/admin/users/${limited.id}`, {
      key: service.adminKey,
      body: { limits: { tpm: 380, rpm } },
    });
    assert.equal(patched.status, 200, patched.text);
    const chat = (content: string, maxTokens: number) => ({
      model: "gpt-4o-mini",
      max_tokens: maxTokens,
      messages: [{ role: "user", content }],
    });
    service.upstream!.setFaults({ latencyMs: 400 });
    const before = chatCalls();
    const same = chat(`shared ${Date.now()}`, 100);
    const together = Array.from({ length: 10 }, () =>
      service.call("POST", "/v1/chat/completions", { key: limited.key, body: same }),
    );
    // The different request goes once the shared call is at the upstream and all 10 have been admitted: a request
    // reserves (or, joining the call, does not) right after its admission.
    let admitted = 0;
    await pollUntil(
      async () => {
        const me = await service.call("GET", "/me", { key: limited.key });
        admitted = rpm - me.body.usage.rate_limits.requests.remaining;
        return admitted === 10 && chatCalls() - before === 1;
      },
      5_000,
      () => `${admitted} of the 10 admitted, ${chatCalls() - before} upstream calls`,
      10,
    );
    const other = await service.call("POST", "/v1/chat/completions", {
      key: limited.key,
      body: chat(`other ${Date.now()}`, 60),
    });
    const answers = await Promise.all(together);
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(10).fill(200),
    );
    assert.equal(other.status, 200, `the different request: ${other.text}`);
    assert.equal(chatCalls() - before, 2, "one shared call and the different one");
  });

  test("requests that bypass the cache are not coalesced", async () => {
    service.upstream!.setFaults({ latencyMs: 200 });
    const before = chatCalls();
    const body = { type: "summarize", input: `apart ${Date.now()}`, cache: false };
    await Promise.all(Array.from({ length: 5 }, () => service.call("POST", "/requests", { key: user.key, body })));
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.equal(chatCalls() - before, 5);
  });

  test("when the shared call fails, every request sharing it fails and is stored as failed", async () => {
    service.upstream!.setFaults({ latencyMs: 200, failNext: [{ status: 400, message: "no such thing" }] });
    const body = { type: "translate", input: `doomed ${Date.now()}`, options: { target_language: "fr" } };
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => service.call("POST", "/requests", { key: user.key, body })),
    );
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.deepEqual(
      answers.map((a) => a.status),
      [400, 400, 400, 400, 400],
    );
  });
});

for (const mode of redisModes)
  describe(`coalescing across two instances sharing Redis (${mode})`, () => {
    let redis: RedisForTest;
    let pg: TestPostgres;
    let upstream: MockUpstream;
    let a: TestService;
    let b: TestService;
    let user: { id: string; key: string };

    before(async () => {
      redis = await redisFor(mode);
      pg = await createTestPostgres();
      upstream = await startMockUpstream({ port: 0, apiKey: "sk-test-upstream" });
      a = await startTestService({ databaseUrl: pg.url, upstream, redis: false, env: redis.env });
      b = await startTestService({ databaseUrl: pg.url, upstream, redis: false, env: redis.env });
      user = await a.createUser();
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await upstream?.close();
      await pg?.close();
      await redis?.close();
    });

    test("identical requests spread over both instances reach the upstream once", async () => {
      upstream.setFaults({ latencyMs: 300 });
      const calls = () => upstream.stats().requests["POST /v1/chat/completions"] ?? 0;
      const before = calls();
      const body = { type: "summarize", input: `two instances ${Date.now()}` };
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).call("POST", "/requests", { key: user.key, body })),
      );
      upstream.setFaults({ latencyMs: 0 });
      assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([201]));
      assert.equal(calls() - before, 1, "the other instance waited for the first one's answer");
      assert.equal(new Set(answers.map((answer) => answer.body.id)).size, 20, "20 requests of their own");
      assert.equal(answers.filter((answer) => answer.body.cached === false).length, 1, "one paid for the call");
    });
  });

describe("single flight across instances (shared Redis)", () => {
  let redis: Redis;
  before(() => {
    redis = new Redis("redis://127.0.0.1:6379");
  });
  after(() => redis.quit());

  for (const shared of [true, false]) {
    test(`a request that missed the cache just before a leader's fill, arriving after the leader is gone, is answered from the fill (${shared ? "Redis" : "in process"})`, async () => {
      const key = `late-${Date.now()}-${Math.random()}`;
      const answerKey = `test:answer:${key}`;
      const flight = createSingleFlight({ redis: shared ? redis : undefined, lockTtlMs: 5_000, pollIntervalMs: 5 });
      const readShared = async () => (await redis.get(answerKey)) ?? undefined;
      let calls = 0;
      const lead = async () => {
        calls++;
        await redis.set(answerKey, "the leader's answer", "PX", 5_000);
        return "the leader's answer";
      };
      // The leader runs, fills and releases, and is forgotten.
      assert.deepEqual(await flight.run(key, lead, readShared), { value: "the leader's answer", shared: false });
      assert.equal(flight.running(key), false);
      // The late request's own lookup (before the fill) had missed; it reaches the single flight only now.
      assert.deepEqual(await flight.run(key, lead, readShared), { value: "the leader's answer", shared: true });
      assert.equal(calls, 1, "the upstream was called once");
      assert.equal(await redis.exists(`arh:flight:${key}`), 0, "no lock is left behind");
      await redis.del(answerKey);
    });
  }

  test("a leader that fills and releases between a waiter's read and its lock check is not called again", async () => {
    const key = `race-${Date.now()}-${Math.random()}`;
    const lockKey = `arh:flight:${key}`;
    const answerKey = `test:answer:${key}`;
    // Another instance holds the lock and is calling the upstream.
    await redis.set(lockKey, "other-instance", "PX", 5_000);
    let reads = 0;
    // The other instance's fill and release land just after this instance's read has come back empty: the
    // worst moment, when a waiter that checked the lock after reading would think the leader had failed.
    const readShared = async () => {
      const value = await redis.get(answerKey);
      if (reads++ === 0) {
        await redis.set(answerKey, "the leader's answer", "PX", 5_000);
        await redis.del(lockKey);
      }
      return value ?? undefined;
    };
    let led = 0;
    const flight = createSingleFlight({ redis, lockTtlMs: 5_000, pollIntervalMs: 5 });
    const result = await flight.run(
      key,
      async () => {
        led++;
        return "a second upstream call";
      },
      readShared,
    );
    assert.equal(led, 0, "this instance did not call the upstream itself");
    assert.deepEqual(result, { value: "the leader's answer", shared: true });
    await redis.del(answerKey, lockKey);
  });
});
