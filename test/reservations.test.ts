import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { ChatCompletionRequest } from "../src/providers/provider.ts";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { type CallResult, startTestService, type TestService } from "./helpers/service.ts";

/**
 * Reservations hold whatever the upstream's tokenizer: against an upstream that counts a token per 3 bytes (as
 * models that are not OpenAI's do, in their own ways), 20 concurrent requests over two instances never spend past
 * a budget, or a tpm, by more than one request. The text is repetitive: OpenAI's tokenizer counts it at ~0.19
 * tokens a byte, so a reservation made with that tokenizer held about half of what each call then spent.
 */
describe("reservations against an upstream that counts tokens its own way (two instances)", () => {
  let database: TestPostgres;
  let upstream: MockUpstream;
  let a: TestService;
  let b: TestService;
  const adminKey = `admin-${randomBytes(16).toString("hex")}`;
  const sentBodies: ChatCompletionRequest[] = [];

  before(async () => {
    database = await createTestPostgres();
    upstream = await startMockUpstream({
      port: 0,
      apiKey: "sk-test-upstream",
      bytesPerToken: 3,
      onChatRequest: (request) => sentBodies.push(request),
    });
    const options = { databaseUrl: database.url, upstream, redis: true, env: { ADMIN_API_KEY: adminKey } };
    a = await startTestService(options);
    b = await startTestService(options);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await upstream?.close();
    await database?.close();
  });

  const lorem = "lorem ipsum dolor sit amet ".repeat(5_000); // 135 kB: ~45,000 tokens at 3 bytes a token
  const body = (model: string) => ({
    model,
    max_tokens: 16,
    messages: [{ role: "user", content: `${randomBytes(8).toString("hex")} ${lorem}` }],
  });
  const chat = (service: TestService, key: string, model: string) =>
    service.call("POST", "/v1/chat/completions", { key, body: body(model) });

  async function userWith(limits: Record<string, number>) {
    const user = await a.createUser();
    const patched = await a.call("PATCH", `/admin/users/${user.id}`, { key: adminKey, body: { limits } });
    assert.equal(patched.status, 200, patched.text);
    return user;
  }

  /** Cost and tokens of one request of this shape, as stored. */
  async function oneRequest(service: TestService, model: string) {
    const user = await service.createUser();
    const answer = await chat(service, user.key, model);
    assert.equal(answer.status, 200, answer.text);
    const record = await service.call("GET", `/requests/${answer.headers.get("x-record-id")}`, { key: user.key });
    return { costUsd: record.body.cost_usd as number, tokens: record.body.usage.total_tokens as number };
  }

  async function burst(user: { key: string }, model: string): Promise<CallResult[]> {
    return Promise.all(Array.from({ length: 20 }, (_, i) => chat(i % 2 ? a : b, user.key, model)));
  }

  async function spentBy(user: { key: string }) {
    const usage = await a.call("GET", "/me/usage", { key: user.key });
    assert.equal(usage.status, 200, usage.text);
    return usage.body.totals as { requests: number; cost_usd: number; total_tokens: number };
  }

  for (const [name, model, warm] of [
    ["a model the instances have already seen", "gpt-4o-mini", true],
    ["a model only one instance has seen (the other reserves a token a byte)", "gpt-4o", false],
  ] as const) {
    test(`budget: spend never exceeds the budget by more than one request's cost, ${name}`, async () => {
      // The price of one request, measured on the instances' own answers; it also teaches them the model.
      // Measuring also teaches the instance the model; cold, only A has seen it (B reserves a token a byte).
      const one = await oneRequest(a, model);
      if (warm) await oneRequest(b, model);
      const budget = one.costUsd * 5.5;
      const user = await userWith({ monthly_budget_usd: budget });

      const answers = await burst(user, model);
      const ok = answers.filter((answer) => answer.status === 200).length;
      for (const answer of answers.filter((answer) => answer.status !== 200)) {
        assert.equal(answer.status, 429, answer.text);
        assert.equal(answer.body.error.code, "budget_exceeded", answer.text);
      }
      const spent = await spentBy(user);
      assert.equal(spent.requests, ok, "every answered request is recorded; refused ones made no call");
      assert.ok(
        spent.cost_usd <= budget + one.costUsd + 1e-9,
        `spent $${spent.cost_usd} of a $${budget} budget in ${ok} requests of ~$${one.costUsd}`,
      );
      if (warm) assert.ok(ok >= 4, `${ok} requests got through: a learned ratio leaves the budget usable`);
      else assert.ok(ok >= 1, "at one token a byte, the budget still admits a request");
    });
  }

  test("tpm: tokens in the window never exceed the limit by more than one request", async () => {
    const one = await oneRequest(a, "gpt-4o-mini");
    await oneRequest(b, "gpt-4o-mini");
    const tpm = Math.round(one.tokens * 5.5);
    const user = await userWith({ tpm });

    const answers = await burst(user, "gpt-4o-mini");
    const ok = answers.filter((answer) => answer.status === 200).length;
    for (const answer of answers.filter((answer) => answer.status !== 200)) {
      assert.equal(answer.status, 429, answer.text);
      assert.equal(answer.body.error.code, "rate_limited", answer.text);
    }
    const spent = await spentBy(user);
    assert.ok(
      spent.total_tokens <= tpm + one.tokens,
      `${spent.total_tokens} tokens used in the window against a tpm of ${tpm} (${ok} requests of ~${one.tokens})`,
    );
    assert.ok(ok >= 4, `${ok} requests got through`);
  });

  test("a metered caller's request with no max_tokens is capped upstream at the output it reserved", async () => {
    const metered = await userWith({ tpm: 1_000_000 });
    const unmetered = await a.createUser();
    const send = async (
      key: string,
      path: string,
      request: { messages?: Array<{ content: string }>; input?: string; [field: string]: unknown },
    ) => {
      const before = sentBodies.length;
      const answer = await a.call("POST", path, { key, body: request });
      assert.ok(answer.status === 200 || answer.status === 201, answer.text);
      assert.equal(sentBodies.length, before + 1, "this request reached the upstream");
      const sent = sentBodies.at(-1)!;
      // The body the upstream got carries this request's own (random) text.
      const text = request.messages?.[0]?.content ?? request.input ?? "";
      assert.ok(JSON.stringify(sent.messages).includes(text), "the upstream's body is this request's");
      return sent;
    };
    const v1 = () => ({ model: "gpt-4o-mini", messages: [{ role: "user", content: randomBytes(4).toString("hex") }] });
    const native = () => ({ type: "summarize", input: `capped ${randomBytes(4).toString("hex")}` });

    const meteredV1 = await send(metered.key, "/v1/chat/completions", v1());
    assert.equal(meteredV1.max_completion_tokens, 4096);
    assert.equal(meteredV1.max_tokens, undefined);
    const ownMax = await send(metered.key, "/v1/chat/completions", { ...v1(), max_tokens: 20 });
    assert.deepEqual([ownMax.max_tokens, ownMax.max_completion_tokens], [20, undefined], "a max of its own stays");
    assert.equal((await send(metered.key, "/requests", native())).max_tokens, 4096);

    const unmeteredV1 = await send(unmetered.key, "/v1/chat/completions", v1());
    assert.deepEqual([unmeteredV1.max_tokens, unmeteredV1.max_completion_tokens], [undefined, undefined]);
    assert.equal((await send(unmetered.key, "/requests", native())).max_tokens, undefined);
  });
});
