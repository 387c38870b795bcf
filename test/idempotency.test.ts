import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { pollUntil } from "./helpers/processes.ts";
import { type RedisForTest, redisFor, redisModes } from "./helpers/redis-modes.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

/** Idempotency-Key: a retry gets the first answer and is neither run, stored nor billed again. */
for (const mode of redisModes)
  describe(`Idempotency-Key (Redis-backed: ${mode})`, () => {
    let redis: RedisForTest;
    let service: TestService;
    let user: { id: string; key: string };

    before(async () => {
      redis = await redisFor(mode);
      service = await startTestService({ backend: "postgres", redis: false, env: redis.env });
      user = await service.createUser();
    });
    after(async () => {
      await service?.close();
      await redis?.close();
    });

    const post = (body: unknown, key: string, who = user.key) =>
      service.call("POST", "/requests", { key: who, body, headers: { "idempotency-key": key } });
    const calls = () => service.upstream?.stats().requests["POST /v1/chat/completions"] ?? 0;
    const count = async () => (await service.call("GET", "/requests?limit=100", { key: user.key })).body.data.length;

    test("a retry with the same key and body gets the first answer, not a new request", async () => {
      const key = `retry-${Date.now()}`;
      const body = { type: "summarize", input: `once ${Date.now()}`, cache: false };
      const storedBefore = await count();
      const upstreamBefore = calls();
      const first = await post(body, key);
      const second = await post(body, key);
      assert.equal(first.status, 201);
      assert.equal(second.status, 201);
      assert.equal(second.body.id, first.body.id);
      assert.deepEqual(second.body, first.body);
      assert.equal(second.headers.get("idempotent-replayed"), "true");
      assert.equal(second.headers.get("location"), first.headers.get("location"));
      assert.equal(calls() - upstreamBefore, 1, "the upstream was called once");
      assert.equal((await count()) - storedBefore, 1, "stored once");
    });

    test("the same key with a different body is a 422", async () => {
      const key = `mismatch-${Date.now()}`;
      assert.equal((await post({ type: "summarize", input: "a" }, key)).status, 201);
      const other = await post({ type: "summarize", input: "b" }, key);
      assert.equal(other.status, 422);
      assert.equal(other.body.errors[0].path, "idempotency-key");
    });

    test("a retry while the first request runs waits for its answer", async () => {
      service.upstream!.setFaults({ latencyMs: 400 });
      const key = `concurrent-${Date.now()}`;
      const body = { type: "summarize", input: `slow ${Date.now()}`, cache: false };
      const upstreamBefore = calls();
      const [first, second] = await Promise.all([post(body, key), post(body, key)]);
      service.upstream!.setFaults({ latencyMs: 0 });
      assert.equal(first.status, 201);
      assert.equal(second.status, 201);
      assert.equal(first.body.id, second.body.id);
      assert.equal(calls() - upstreamBefore, 1);
    });

    test("keys are per user, and a failed first attempt is run again", async () => {
      const other = await service.createUser();
      const key = `shared-${Date.now()}`;
      const body = { type: "summarize", input: `mine ${Date.now()}` };
      const mine = await post(body, key);
      const theirs = await post(body, key, other.key);
      assert.notEqual(theirs.body.id, mine.body.id);

      const retryKey = `failing-${Date.now()}`;
      const failing = { type: "summarize", input: `fails first ${Date.now()}` };
      service.upstream!.setFaults({ failNext: [{ status: 500 }, { status: 500 }, { status: 500 }] });
      assert.equal((await post(failing, retryKey)).status, 502);
      assert.equal((await post(failing, retryKey)).status, 201, "the retry ran, not a replay of the 502");
    });

    test("a malformed key is a 400 naming the header", async () => {
      const answer = await post({ type: "summarize", input: "x" }, "k".repeat(300));
      assert.equal(answer.status, 400);
      assert.equal(answer.body.errors[0].path, "idempotency-key");
    });

    test("an OpenAI client sending Idempotency-Key on /v1 gets the first completion back", async () => {
      const client = new OpenAI({ apiKey: user.key, baseURL: `${service.url}/v1`, maxRetries: 0 });
      const request = {
        model: "gpt-4o-mini",
        messages: [{ role: "user" as const, content: `idempotent ${Date.now()}` }],
      };
      const headers = { "Idempotency-Key": `sdk-${Date.now()}`, "Cache-Control": "no-store" };
      const upstreamBefore = calls();
      const a = await client.chat.completions.create(request, { headers });
      const { data: b, response } = await client.chat.completions.create(request, { headers }).withResponse();
      assert.equal(b.id, a.id);
      assert.equal(response.headers.get("idempotent-replayed"), "true");
      assert.equal(calls() - upstreamBefore, 1, "the replay made no upstream call");
    });
  });

describe("Idempotency-Key set to reject while running (memory store)", () => {
  let service: TestService;
  let user: { id: string; key: string };
  before(async () => {
    service = await startTestService({ backend: "pglite", redis: false, env: { IDEMPOTENCY_WHILE_RUNNING: "reject" } });
    user = await service.createUser();
  });
  after(() => service.close());

  test("a retry while the first runs gets 409; after it, the first answer", async () => {
    // The first call stays at the upstream this long: the time the retry has to arrive while it runs.
    service.upstream!.setFaults({ latencyMs: 1_000 });
    const calls = () => service.upstream!.stats().requests["POST /v1/chat/completions"] ?? 0;
    const before = calls();
    const body = { type: "summarize", input: `reject ${Date.now()}` };
    const headers = { "idempotency-key": `k-${Date.now()}` };
    const first = service.call("POST", "/requests", { key: user.key, body, headers });
    // Its call reaching the upstream means the first holds the key and is running.
    await pollUntil(
      () => calls() > before,
      5_000,
      () => "the first request's call never reached the upstream",
      5,
    );
    const early = await service.call("POST", "/requests", { key: user.key, body, headers });
    assert.equal(early.status, 409);
    const done = await first;
    service.upstream!.setFaults({ latencyMs: 0 });
    const later = await service.call("POST", "/requests", { key: user.key, body, headers });
    assert.equal(later.status, 201);
    assert.equal(later.body.id, done.body.id);
  });
});
