import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
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
