import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { startTestService, type TestService } from "./helpers/service.ts";

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
    const disconnectsBefore = service.upstream!.stats().clientDisconnects;
    const body = JSON.stringify({ type: "summarize", input: "I will not wait", cache: false });
    const url = new URL(`${service.url}/requests`);
    const pending = request(url, {
      method: "POST",
      headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" },
    });
    pending.on("error", () => {});
    pending.end(body);
    await delay(200);
    pending.destroy();

    let cancelled: { status: string; error: { code: string } } | undefined;
    for (let i = 0; i < 50 && !cancelled; i++) {
      await delay(50);
      const list = await service.call("GET", "/requests?status=cancelled", { key: user.key });
      cancelled = list.body.data[0];
    }
    service.upstream!.setFaults({ latencyMs: 0 });
    assert.ok(cancelled, "the request was stored as cancelled");
    assert.equal(cancelled.error.code, "client_closed");
    assert.ok(service.upstream!.stats().clientDisconnects > disconnectsBefore, "the upstream saw the call closed");
  });
});
