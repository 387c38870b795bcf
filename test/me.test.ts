import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestService, type TestService } from "./helpers/service.ts";

/** GET /me and GET /me/usage: the caller's own account, limits and usage. */
describe("GET /me and /me/usage", () => {
  let service: TestService;

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: true, provider: "builtin" });
  });
  after(() => service.close());

  const admin = (method: string, path: string, body?: unknown) =>
    service.call(method, path, { key: service.adminKey, body });

  test("the caller's user, key, limits and this month's usage, deleted requests included", async () => {
    const user = await service.createUser();
    await admin("PATCH", `/admin/users/${user.id}`, { limits: { rpm: 100, monthly_budget_usd: 5 } });
    const key = await admin("POST", `/admin/users/${user.id}/keys`, { name: "ci", limits: { rpm: 50 } });
    assert.equal(key.status, 201, key.text);
    assert.deepEqual(key.body.limits, { rpm: 50, tpm: null });

    const body = { type: "summarize", input: `usage ${Date.now()}` };
    const first = await service.call("POST", "/requests", { key: key.body.key, body });
    const hit = await service.call("POST", "/requests", { key: key.body.key, body });
    const other = await service.call("POST", "/requests", {
      key: key.body.key,
      body: { type: "translate", input: "Good night", options: { target_language: "Italian" } },
    });
    for (const answer of [first, hit, other]) assert.equal(answer.status, 201, answer.text);
    assert.equal(hit.body.cached, true);
    assert.equal((await service.call("DELETE", `/requests/${other.body.id}`, { key: key.body.key })).status, 204);

    const me = await service.call("GET", "/me", { key: key.body.key });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.headers.get("cache-control"), "no-store");
    assert.equal(me.body.id, user.id);
    assert.equal(me.body.object, "user");
    assert.deepEqual(me.body.limits, { rpm: 100, tpm: null, monthly_budget_usd: 5 });
    assert.equal(me.body.key.id, key.body.id);
    assert.equal(me.body.key.key, undefined, "never the key itself");
    assert.deepEqual(me.body.key.limits, { rpm: 50, tpm: null });

    const cost = first.body.cost_usd + other.body.cost_usd;
    const month = me.body.usage.this_month;
    assert.equal(month.requests, 3, "the deleted request still counts");
    assert.equal(month.cache_hits, 1);
    assert.equal(month.total_tokens, first.body.usage.total_tokens * 2 + other.body.usage.total_tokens);
    assert.ok(Math.abs(month.cost_usd - cost) < 1e-9);
    assert.ok(Math.abs(month.budget_remaining_usd - (5 - cost)) < 1e-9);
    assert.equal(month.from, `${new Date().toISOString().slice(0, 7)}-01`);
    assert.equal(me.body.usage.last_minute.requests, 3);
    // The key's 50 is tighter than the user's 100.
    assert.equal(me.body.usage.rate_limits.requests.limit, 50);
    assert.equal(me.body.usage.rate_limits.tokens, null);
  });

  test("usage per day and per model over a range, with totals", async () => {
    const user = await service.createUser();
    for (const input of ["one", "two"]) {
      const answer = await service.call("POST", "/requests", { key: user.key, body: { type: "summarize", input } });
      assert.equal(answer.status, 201);
    }
    const embed = await service.call("POST", "/requests", { key: user.key, body: { type: "embed", input: "vec" } });
    assert.equal(embed.status, 201);

    const today = new Date().toISOString().slice(0, 10);
    const byDay = await service.call("GET", "/me/usage", { key: user.key });
    assert.equal(byDay.status, 200, byDay.text);
    assert.equal(byDay.body.group_by, "day");
    assert.equal(byDay.body.to, today);
    assert.deepEqual(
      byDay.body.data.map((row: { day: string; requests: number }) => [row.day, row.requests]),
      [[today, 3]],
    );

    const byModel = await service.call("GET", `/me/usage?group_by=model&from=${today}&to=${today}`, { key: user.key });
    assert.equal(byModel.status, 200, byModel.text);
    const models = byModel.body.data.map((row: { model: string; requests: number }) => [row.model, row.requests]);
    assert.deepEqual(models, [
      ["gpt-4o-mini", 2],
      ["text-embedding-3-small", 1],
    ]);
    assert.equal(byModel.body.totals.requests, 3);
    assert.deepEqual(byModel.body.totals, byDay.body.totals);
    assert.equal(
      byModel.body.totals.completion_tokens + byModel.body.totals.prompt_tokens,
      byModel.body.totals.total_tokens,
    );

    const empty = await service.call("GET", "/me/usage?from=2020-01-01&to=2020-12-31", { key: user.key });
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.data, []);
    assert.equal(empty.body.totals.requests, 0);
  });

  test("bad ranges and parameters are 400s naming the field", async () => {
    const user = await service.createUser();
    for (const [query, field] of [
      ["from=2026-03-02&to=2026-03-01", "from"],
      ["from=2025-01-01&to=2026-01-02", "to"],
      ["from=2026-02-30", "from"],
      ["to=yesterday", "to"],
      ["group_by=week", "group_by"],
      ["group_by=day&extra=1", ""],
    ] as const) {
      const answer = await service.call("GET", `/me/usage?${query}`, { key: user.key });
      assert.equal(answer.status, 400, `${query}: ${answer.text}`);
      if (field) {
        assert.ok(
          answer.body.errors.some((error: { path: string }) => error.path === field),
          `${query} names ${field}: ${answer.text}`,
        );
      }
    }
    // 366 days counting both ends is the most a range may span.
    const longest = await service.call("GET", "/me/usage?from=2024-01-01&to=2024-12-31", { key: user.key });
    assert.equal(longest.status, 200, longest.text);
  });

  test("the operator key is no user's key and no key at all is refused: 401", async () => {
    assert.equal((await service.call("GET", "/me", { key: service.adminKey })).status, 401);
    assert.equal((await service.call("GET", "/me")).status, 401);
    assert.equal((await service.call("GET", "/me/usage")).status, 401);
  });

  test("a stream holds tokens only while it runs: a cached replay and an rpm refusal leave none reserved", async () => {
    const user = await service.createUser();
    await admin("PATCH", `/admin/users/${user.id}`, { limits: { rpm: 3, tpm: 100_000 } });
    const tokensLeft = async () => {
      const me = await service.call("GET", "/me", { key: user.key });
      assert.equal(me.status, 200, me.text);
      return me.body.usage.rate_limits.tokens.remaining as number;
    };
    const stream = (content: string) =>
      service.call("POST", "/v1/chat/completions", {
        key: user.key,
        body: { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content }] },
      });

    const question = `stream limits ${Date.now()}`;
    const first = await stream(question);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get("x-cache"), "miss");
    const afterFirst = await tokensLeft();
    assert.ok(afterFirst < 100_000, "the stream's tokens count");

    const replay = await stream(question);
    assert.equal(replay.status, 200, replay.text);
    assert.equal(replay.headers.get("x-cache"), "hit");
    assert.equal(await tokensLeft(), afterFirst, "a cached replay spends and holds no tokens");

    assert.equal((await stream(`${question} again`)).status, 200);
    const afterThird = await tokensLeft();
    const refused = await stream(`${question} once more`);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(await tokensLeft(), afterThird, "a request refused by rpm holds no tokens");
  });
});
