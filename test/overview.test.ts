import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AppError } from "../src/errors.ts";
import { resolveOverviewRange } from "../src/http/overview.ts";
import { newId } from "../src/ids.ts";
import { type CallResult, startTestService, type TestService } from "./helpers/service.ts";

/** An answer's parsed body (the helper types it loosely, for assertions). */
type Answer = CallResult["body"];

const dayMs = 86_400_000;

describe("the overview's range (no service)", () => {
  const now = Date.parse("2026-12-04T15:20:00Z");
  const range = (query: { from?: string; to?: string; bucket: "hour" | "day" }) => {
    const { from, to } = resolveOverviewRange(query, now);
    return [from.toISOString(), to.toISOString()];
  };
  /** The field a refused range names. */
  const refused = (query: { from?: string; to?: string; bucket: "hour" | "day" }) => {
    try {
      resolveOverviewRange(query, now);
    } catch (error) {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, "invalid_request");
      return error.param;
    }
    assert.fail(`accepted ${JSON.stringify(query)}`);
  };

  test("default: the last 7 days ending now, rounded up to the bucket", () => {
    assert.deepEqual(range({ bucket: "day" }), ["2026-11-28T00:00:00.000Z", "2026-12-05T00:00:00.000Z"]);
    assert.deepEqual(range({ bucket: "hour" }), ["2026-11-27T16:00:00.000Z", "2026-12-04T16:00:00.000Z"]);
  });

  test("from rounds down and to up to the hour; a date-only to includes its day, as in /me/usage", () => {
    assert.deepEqual(range({ from: "2026-12-01T10:59:59Z", to: "2026-12-02T03:00:01+02:00", bucket: "day" }), [
      "2026-12-01T10:00:00.000Z",
      "2026-12-02T02:00:00.000Z",
    ]);
    assert.deepEqual(range({ from: "2026-12-01", to: "2026-12-01", bucket: "hour" }), [
      "2026-12-01T00:00:00.000Z",
      "2026-12-02T00:00:00.000Z",
    ]);
    assert.deepEqual(range({ to: "2026-12-10T00:00:00Z", bucket: "day" }), [
      "2026-12-03T00:00:00.000Z",
      "2026-12-10T00:00:00.000Z",
    ]);
  });

  test("an empty or too long range, or too many hour buckets, is refused naming the field", () => {
    assert.equal(refused({ from: "2026-12-02", to: "2026-12-01", bucket: "day" }), "from");
    assert.equal(refused({ from: "2026-12-01T10:00:00Z", to: "2026-12-01T10:00:00Z", bucket: "day" }), "from");
    assert.equal(refused({ from: "2025-01-01", to: "2026-01-02", bucket: "day" }), "to");
    assert.equal(refused({ from: "2026-10-01", to: "2026-11-01", bucket: "hour" }), "bucket");
    // 366 days and 31 days of hours are the most.
    assert.equal(
      resolveOverviewRange({ from: "2024-01-01", to: "2024-12-31", bucket: "day" }, now).to.getTime() -
        Date.parse("2024-01-01"),
      366 * dayMs,
    );
    assert.equal(
      resolveOverviewRange({ from: "2026-10-01", to: "2026-10-31", bucket: "hour" }, now).to.getTime() -
        Date.parse("2026-10-01"),
      31 * dayMs,
    );
  });
});

describe("GET /me/overview and /admin/overview", () => {
  let service: TestService;
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  let admin: { id: string; key: string };
  /** What alice's and bob's requests answered, made through the API against the mock upstream. */
  const answers: Record<string, Array<Answer>> = {};
  const today = new Date().toISOString().slice(0, 10);

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: true });
    alice = await service.createUser();
    bob = await service.createUser();
    const adminUser = await service.call("POST", "/admin/users", {
      key: service.adminKey,
      body: { email: `admin-${Date.now()}@overview.test`, role: "admin" },
    });
    const adminKey = await service.call("POST", `/admin/users/${adminUser.body.id}/keys`, {
      key: service.adminKey,
      body: {},
    });
    assert.equal(adminKey.status, 201, adminKey.text);
    admin = { id: adminUser.body.id, key: adminKey.body.key };
    const post = async (key: string, body: unknown) => service.call("POST", "/requests", { key, body });
    const summarize = { type: "summarize", input: `overview ${Date.now()}` };
    const made = {
      alice: [
        await post(alice.key, summarize),
        await post(alice.key, summarize), // a cache hit
        await post(alice.key, { type: "chat", input: [{ role: "user", content: "hello there" }] }),
        await post(alice.key, { type: "translate", input: "Good night", options: { target_language: "Italian" } }),
        await post(alice.key, { type: "embed", input: "vectors please" }),
      ],
      bob: [await post(bob.key, { type: "summarize", input: `bob's ${Date.now()}` })],
    };
    for (const answer of [...made.alice, ...made.bob]) assert.equal(answer.status, 201, answer.text);
    assert.equal(made.alice[1]?.body.cached, true);
    service.upstream?.setFaults({ failNext: [{ status: 500 }, { status: 500 }, { status: 500 }] });
    const failed = await post(alice.key, { type: "summarize", input: "this will fail" });
    assert.equal(failed.status, 502, failed.text);
    service.upstream?.resetFaults();
    const [stored] = (await service.call("GET", "/requests?status=failed", { key: alice.key })).body.data;
    answers.alice = [...made.alice.map((answer) => answer.body), stored];
    answers.bob = made.bob.map((answer) => answer.body);
  });
  after(() => service?.close());

  const sum = (items: Array<Answer>, pick: (item: Answer) => number) =>
    items.reduce((total, item) => total + pick(item), 0);

  test("a user sees their own numbers only, and they add up to their requests", async () => {
    const answer = await service.call("GET", `/me/overview?from=${today}&to=${today}`, { key: alice.key });
    assert.equal(answer.status, 200, answer.text);
    const own = answers.alice ?? [];
    assert.equal(answer.body.object, "overview");
    assert.equal(answer.body.bucket, "day");
    assert.equal(answer.body.from, `${today}T00:00:00Z`);
    assert.equal(answer.body.to, new Date(Date.parse(today) + dayMs).toISOString().replace(".000Z", "Z"));
    assert.equal(answer.body.by_user, undefined, "no breakdown by user for a user");
    const { totals } = answer.body;
    assert.equal(totals.requests, own.length);
    assert.equal(totals.errors, 1);
    assert.equal(totals.cache_hits, 1);
    assert.equal(
      totals.total_tokens,
      sum(own, (r) => r.usage.total_tokens),
    );
    assert.equal(
      totals.prompt_tokens,
      sum(own, (r) => r.usage.prompt_tokens),
    );
    assert.ok(Math.abs(totals.cost_usd - sum(own, (r) => r.cost_usd ?? 0)) < 1e-9);
    assert.equal(totals.error_rate, 1 / own.length);
    assert.equal(totals.cache_hit_rate, 1 / own.length);
    assert.equal(typeof totals.latency_p50_ms, "number");
    assert.deepEqual(
      answer.body.series.map((point: { start: string; requests: number }) => [point.start, point.requests]),
      [[`${today}T00:00:00Z`, own.length]],
    );
    assert.deepEqual(
      Object.fromEntries(
        answer.body.by_type.map((entry: { key: string; requests: number }) => [entry.key, entry.requests]),
      ),
      { summarize: 3, chat: 1, translate: 1, embed: 1 },
    );
    assert.equal(answer.body.by_type[0].key, "summarize", "most requests first");
    assert.equal(
      sum(answer.body.by_model, (entry) => entry.requests),
      own.length,
    );
    assert.equal(
      sum(answer.body.by_provider, (entry) => entry.requests),
      own.length,
    );

    // Bob's one request: its latency is his p50 and p95 exactly (a bucket holding one value is that value).
    const his = await service.call("GET", "/me/overview?bucket=hour", { key: bob.key });
    assert.equal(his.status, 200, his.text);
    assert.equal(his.body.totals.requests, 1);
    assert.equal(his.body.series.length, 7 * 24);
    assert.equal(his.body.totals.latency_p50_ms, answers.bob?.[0]?.latency_ms);
    assert.equal(his.body.totals.latency_p95_ms, answers.bob?.[0]?.latency_ms);
    const empty = his.body.series.find((point: { requests: number }) => point.requests === 0);
    assert.equal(empty.latency_p50_ms, null);
    assert.equal(empty.cost_usd, 0);
  });

  test("totals over whole days equal GET /me/usage's for the same days", async () => {
    const from = new Date(Date.now() - 2 * dayMs).toISOString().slice(0, 10);
    const usage = await service.call("GET", `/me/usage?from=${from}&to=${today}`, { key: alice.key });
    const overview = await service.call("GET", `/me/overview?from=${from}&to=${today}`, { key: alice.key });
    assert.equal(usage.status, 200, usage.text);
    assert.equal(overview.status, 200, overview.text);
    const { requests, prompt_tokens, completion_tokens, total_tokens, cost_usd, cache_hits } = overview.body.totals;
    assert.deepEqual(
      { requests, prompt_tokens, completion_tokens, total_tokens, cost_usd, cache_hits },
      usage.body.totals,
    );
    assert.equal(overview.body.series.length, 3);
  });

  test("/admin/overview: a user's key is refused, an admin gets everyone's numbers by user", async () => {
    assert.equal((await service.call("GET", "/admin/overview", { key: alice.key })).status, 403);
    assert.equal((await service.call("GET", "/admin/overview")).status, 401);
    assert.equal((await service.call("GET", "/me/overview")).status, 401);

    for (const key of [service.adminKey, admin.key]) {
      const answer = await service.call("GET", `/admin/overview?from=${today}&to=${today}`, { key });
      assert.equal(answer.status, 200, answer.text);
      const everyone = [...(answers.alice ?? []), ...(answers.bob ?? [])];
      assert.equal(answer.body.totals.requests, everyone.length);
      assert.equal(
        answer.body.totals.total_tokens,
        sum(everyone, (r) => r.usage.total_tokens),
      );
      const byUser = Object.fromEntries(
        answer.body.by_user.map((entry: { key: string; email: string; requests: number }) => [
          entry.key,
          [entry.email.includes("@"), entry.requests],
        ]),
      );
      assert.deepEqual(byUser, { [alice.id]: [true, answers.alice?.length], [bob.id]: [true, 1] });
      assert.equal(answer.body.by_user[0].key, alice.id, "most requests first");
    }

    const one = await service.call("GET", `/admin/overview?from=${today}&to=${today}&user_id=${bob.id}`, {
      key: service.adminKey,
    });
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.totals.requests, 1);
    assert.deepEqual(
      one.body.by_user.map((entry: { key: string; requests: number }) => [entry.key, entry.requests]),
      [[bob.id, 1]],
    );
    const nobody = await service.call("GET", `/admin/overview?user_id=${newId("usr")}`, { key: service.adminKey });
    assert.equal(nobody.status, 404, nobody.text);
  });

  test("bad input is a 400 naming the field", async () => {
    for (const [query, field] of [
      ["from=2026-03-02&to=2026-03-01", "from"],
      ["from=2025-01-01&to=2026-01-02", "to"],
      ["from=2026-02-30", "from"],
      ["to=yesterday", "to"],
      ["bucket=week", "bucket"],
      ["bucket=hour&from=2026-01-01&to=2026-03-01", "bucket"],
      ["bucket=day&extra=1", ""],
    ] as const) {
      const answer = await service.call("GET", `/me/overview?${query}`, { key: alice.key });
      assert.equal(answer.status, 400, `${query}: ${answer.text}`);
      assert.equal(answer.headers.get("content-type"), "application/problem+json; charset=utf-8");
      if (field) {
        assert.ok(
          answer.body.errors.some((error: { path: string }) => error.path === field),
          `${query} names ${field}: ${answer.text}`,
        );
      }
    }
    const badUser = await service.call("GET", "/admin/overview?user_id=bob", { key: service.adminKey });
    assert.equal(badUser.status, 400, badUser.text);
    assert.ok(
      badUser.body.errors.some((error: { path: string }) => error.path === "user_id"),
      badUser.text,
    );
  });

  test("the OpenAPI document describes both routes with the Overview schema", async () => {
    const document = await service.call("GET", "/openapi.json");
    assert.equal(document.status, 200);
    assert.ok(document.body.components.schemas.Overview, "components.schemas.Overview");
    for (const path of ["/me/overview", "/admin/overview"]) {
      const operation = document.body.paths[path]?.get;
      assert.ok(operation, path);
      assert.match(JSON.stringify(operation.responses["200"]), /#\/components\/schemas\/Overview/);
      const names = operation.parameters.map((parameter: { name: string }) => parameter.name);
      for (const name of ["from", "to", "bucket"]) assert.ok(names.includes(name), `${path} ${name}`);
    }
  });
});
