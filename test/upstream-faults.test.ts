import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { pollUntil } from "./helpers/processes.ts";
import { type CallResult, startTestService, type TestService } from "./helpers/service.ts";

/** What a client sees, and what is stored, when the upstream misbehaves. */
describe("upstream faults through the service", () => {
  let service: TestService;
  let user: { id: string; key: string };

  before(async () => {
    service = await startTestService({
      backend: "postgres",
      redis: true,
      env: { UPSTREAM_TIMEOUT_MS: "400", UPSTREAM_MAX_RETRIES: "0" },
    });
    user = await service.createUser();
  });
  after(() => service.close());

  test("an upstream that never answers is a 504 and the request is stored as failed", async () => {
    service.upstream!.setFaults({ failNext: [{ hang: true }] });
    const answer = await service.call("POST", "/requests", {
      key: user.key,
      body: { type: "summarize", input: "hang on", cache: false },
    });
    assert.equal(answer.status, 504, answer.text);
    assert.match(answer.body.type, /upstream-timeout$/);
    const failed = await service.call("GET", "/requests?status=failed", { key: user.key });
    assert.equal(failed.body.data[0].error.code, "upstream_timeout");
  });

  test("an upstream 400 is passed on as a 400 naming the upstream's complaint, not retried", async () => {
    service.upstream!.setFaults({
      failNext: [{ status: 400, message: "model does not support this", param: "model" }],
    });
    const answer = await service.call("POST", "/requests", {
      key: user.key,
      body: { type: "summarize", input: "bad request upstream", cache: false },
    });
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.body.detail, /model does not support this/);
  });

  test("a client that goes away cancels the upstream call, and the request is stored as cancelled", async () => {
    service.upstream!.setFaults({ latencyMs: 1_000 });
    const stats = () => service.upstream!.stats();
    const disconnectsBefore = stats().clientDisconnects;
    const callsBefore = stats().requests["POST /v1/chat/completions"] ?? 0;
    const body = JSON.stringify({ type: "summarize", input: "I will not wait", cache: false });
    const url = new URL(`${service.url}/requests`);
    const pending = request(url, {
      method: "POST",
      headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" },
    });
    pending.on("error", () => {});
    pending.end(body);
    // The client goes away once its call is at the upstream (which then holds it for latencyMs).
    await pollUntil(
      () => (stats().requests["POST /v1/chat/completions"] ?? 0) > callsBefore,
      5_000,
      () => "the call never reached the upstream",
      5,
    );
    pending.destroy();

    let cancelled: { status: string; error: { code: string } } | undefined;
    await pollUntil(
      async () => {
        const list = await service.call("GET", "/requests?status=cancelled", { key: user.key });
        cancelled = list.body.data[0];
        return cancelled !== undefined;
      },
      5_000,
      () => "the request was not stored as cancelled",
    );
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.equal(cancelled?.error.code, "client_closed");
    assert.ok(stats().clientDisconnects > disconnectsBefore, "the upstream saw the call closed");
  });
});

describe("fallbacks, the total deadline and the circuit breaker", () => {
  // Long enough that the open circuit is surely seen refusing; the test waits it out by asking, not by sleeping.
  const coolDownMs = 1_000;
  let service: TestService;
  let user: { id: string; key: string };

  before(async () => {
    service = await startTestService({
      backend: "postgres",
      redis: false,
      env: {
        UPSTREAM_MAX_RETRIES: "0",
        UPSTREAM_TOTAL_TIMEOUT_MS: "400",
        UPSTREAM_FALLBACKS: JSON.stringify({ "gpt-4o": ["gpt-4o-mini"], translate: ["gpt-4.1-mini"] }),
        CIRCUIT_FAILURE_THRESHOLD: "3",
        CIRCUIT_COOL_DOWN_MS: String(coolDownMs),
      },
    });
    user = await service.createUser();
  });
  after(() => service.close());

  const post = (body: unknown) => service.call("POST", "/requests", { key: user.key, body });
  const calls = () => service.upstream?.stats().requests["POST /v1/chat/completions"] ?? 0;

  test("a model that fails for good falls back to the next one configured for it", async () => {
    service.upstream!.setFaults({ failNext: [{ status: 503 }] });
    const answer = await post({ type: "summarize", input: `fallback ${Date.now()}`, model: "gpt-4o" });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.body.model, "gpt-4o-mini");
    const detail = await service.call("GET", `/requests/${answer.body.id}`, { key: user.key });
    assert.deepEqual(detail.body.attempts, [
      { model: "gpt-4o", outcome: "upstream_error" },
      { model: "gpt-4o-mini", outcome: "ok" },
    ]);

    service.upstream!.setFaults({ failNext: [{ status: 500 }] });
    const byType = await post({
      type: "translate",
      input: `per type ${Date.now()}`,
      options: { target_language: "it" },
    });
    assert.equal(byType.status, 201, byType.text);
    assert.equal(byType.body.model, "gpt-4.1-mini");

    // A bad request is the caller's own: no fallback.
    service.upstream!.setFaults({ failNext: [{ status: 400, message: "nope" }] });
    assert.equal((await post({ type: "summarize", input: `no fallback ${Date.now()}`, model: "gpt-4o" })).status, 400);
  });

  test("a call that outlasts UPSTREAM_TOTAL_TIMEOUT_MS is a 504", async () => {
    service.upstream!.setFaults({ latencyMs: 1_500 });
    const started = Date.now();
    const answer = await post({ type: "chat", input: `slow ${Date.now()}`, cache: false });
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.equal(answer.status, 504, answer.text);
    assert.ok(Date.now() - started < 1_400, "it did not wait for the upstream");
  });

  test("after repeated failures the circuit opens (503 + Retry-After, no upstream call), then a probe closes it", async () => {
    // A success first: failures of the tests before must not count toward this one.
    assert.equal((await post({ type: "chat", input: `fine ${Date.now()}` })).status, 201);
    service.upstream!.setFaults({ failNext: [{ status: 500 }, { status: 500 }, { status: 500 }] });
    let thirdFailureSentAt = 0;
    for (let i = 0; i < 3; i++) {
      // The circuit opens while the third failure is answered, so not before it was sent.
      thirdFailureSentAt = Date.now();
      assert.equal((await post({ type: "chat", input: `fail ${i} ${Date.now()}` })).status, 502);
    }
    const before = calls();
    const open = await post({ type: "chat", input: `refused ${Date.now()}` });
    assert.equal(open.status, 503, open.text);
    assert.ok(Number(open.headers.get("retry-after")) >= 1);
    assert.equal(calls(), before, "an open circuit makes no upstream call");

    // What ends the cool-down is time itself: ask until a call is let through, each refusal without an upstream call.
    let probe: CallResult | undefined;
    let refusals = 0;
    await pollUntil(
      async () => {
        probe = await post({ type: "chat", input: `probe ${Date.now()}` });
        if (probe.status !== 503) return true;
        refusals++;
        return false;
      },
      coolDownMs + 5_000,
      () => `the circuit still refused after ${refusals} tries`,
    );
    assert.equal(probe?.status, 201, "the probe went through and closed the circuit");
    assert.equal(calls(), before + 1, "the refusals made no upstream call; the probe made one");
    assert.ok(Date.now() - thirdFailureSentAt >= coolDownMs, "the circuit stayed open for its cool-down");
    assert.equal((await post({ type: "chat", input: `after ${Date.now()}` })).status, 201);
  });
});
