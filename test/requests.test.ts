import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestService, type TestService } from "./helpers/service.ts";

/** The native API end to end: PostgreSQL, Redis and the mock OpenAI upstream on a real socket. */
describe("POST /requests and friends (PostgreSQL + Redis + mock upstream)", () => {
  let service: TestService;
  let alice: { id: string; key: string; keyId: string };
  let bob: { id: string; key: string; keyId: string };

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: true });
    alice = await service.createUser();
    bob = await service.createUser();
  });
  after(() => service.close());

  const chatCalls = () => service.upstream?.stats().requests["POST /v1/chat/completions"] ?? 0;
  const post = (key: string, body: unknown, headers?: Record<string, string>) =>
    service.call("POST", "/requests", { key, body, headers });

  /** The contract's request object, for the request `sent`: its metadata as sent, `{}` when it sent none. */
  function assertRequestObject(body: Record<string, unknown>, sent: Record<string, unknown>) {
    assert.match(String(body.id), /^req_[0-9a-z]{21}$/);
    assert.equal(body.object, "request");
    assert.equal(body.type, sent.type);
    assert.equal(body.status, "completed");
    assert.equal(body.provider, "openai");
    assert.equal(typeof body.model, "string");
    const usage = body.usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    assert.ok(usage.prompt_tokens > 0, "prompt tokens are counted");
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    assert.equal(typeof body.latency_ms, "number");
    assert.ok(!Number.isNaN(Date.parse(String(body.created_at))));
    assert.ok(!Number.isNaN(Date.parse(String(body.completed_at))));
    assert.deepEqual(body.metadata, sent.metadata ?? {});
  }

  test("every type answers 201 with the contract's request object", async () => {
    const cases: Array<{ body: Record<string, unknown>; check: (output: unknown) => void }> = [
      {
        body: { type: "chat", input: [{ role: "user", content: "Hello there" }] },
        check: (output) => assert.ok(typeof output === "string" && output.length > 0),
      },
      {
        body: { type: "summarize", input: "A long text about foxes and dogs.", options: { length: "short" } },
        check: (output) => assert.ok(typeof output === "string" && output.length > 0),
      },
      {
        body: { type: "translate", input: "Good morning", options: { target_language: "French" } },
        check: (output) => assert.ok(typeof output === "string" && output.length > 0),
      },
      {
        body: { type: "classify", input: "I love it", options: { labels: ["positive", "negative", "neutral"] } },
        check: (output) => assert.ok(["positive", "negative", "neutral"].includes((output as { label: string }).label)),
      },
      {
        body: {
          type: "extract",
          input: "Ada Lovelace was born in 1815.",
          options: {
            schema: {
              type: "object",
              properties: { name: { type: "string" }, born: { type: "integer" } },
              required: ["name", "born"],
            },
          },
        },
        check: (output) => {
          const value = output as { name: unknown; born: unknown };
          assert.equal(typeof value.name, "string");
          assert.ok(Number.isInteger(value.born));
        },
      },
      {
        body: { type: "embed", input: "vector me", options: { dimensions: 64 } },
        check: (output) => {
          const value = output as { embedding: number[]; dimensions: number };
          assert.equal(value.dimensions, 64);
          assert.equal(value.embedding.length, 64);
          assert.ok(value.embedding.every((n) => typeof n === "number"));
        },
      },
    ];
    for (const { body, check } of cases) {
      const sent = { ...body, metadata: { case: String(body.type) } };
      const answer = await post(alice.key, sent);
      assert.equal(answer.status, 201, `${body.type}: ${answer.text}`);
      assert.equal(answer.headers.get("location"), `/requests/${answer.body.id}`);
      assert.equal(answer.headers.get("x-cache"), "miss");
      assertRequestObject(answer.body, sent);
      assert.equal(answer.body.cached, false);
      assert.ok(answer.body.cost_usd > 0, `${body.type} has a price: ${answer.body.cost_usd}`);
      check(answer.body.output);
    }
  });

  test("a repeat is answered from the cache and stored as a request of its own", async () => {
    const body = { type: "summarize", input: `cache me ${Date.now()}` };
    const before = chatCalls();
    const first = await post(alice.key, body);
    const second = await post(alice.key, body);
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assertRequestObject(first.body, body);
    assert.equal(first.headers.get("x-cache"), "miss");
    assert.equal(second.headers.get("x-cache"), "hit");
    assert.equal(second.body.cached, true);
    assert.equal(second.body.cost_usd, 0);
    assert.deepEqual(second.body.output, first.body.output);
    assert.notEqual(second.body.id, first.body.id);
    assert.equal(chatCalls() - before, 1, "the hit made no upstream call");
    const stored = await service.call("GET", `/requests/${second.body.id}`, { key: alice.key });
    assert.equal(stored.status, 200);
    assert.equal(stored.body.cached, true);
    assert.equal(stored.body.upstream_ms, null, "a hit called no upstream");
    assert.ok(stored.body.entry_ms > 0, "the entry that found the hit was timed");

    // Another user asking the same thing is not served alice's answer.
    const other = await post(bob.key, body);
    assert.equal(other.headers.get("x-cache"), "miss");
  });

  test("Cache-Control no-cache refreshes, no-store and cache:false bypass", async () => {
    const body = { type: "translate", input: `bonjour ${Date.now()}`, options: { target_language: "German" } };
    const start = chatCalls();
    assert.equal((await post(alice.key, body)).headers.get("x-cache"), "miss");
    const refreshed = await post(alice.key, body, { "cache-control": "no-cache" });
    assert.equal(refreshed.headers.get("x-cache"), "miss");
    assert.equal(refreshed.body.cached, false);
    const bypassed = await post(alice.key, body, { "cache-control": "no-store" });
    assert.equal(bypassed.headers.get("x-cache"), "bypass");
    const off = await post(alice.key, { ...body, cache: false });
    assert.equal(off.headers.get("x-cache"), "bypass");
    assert.equal(chatCalls() - start, 4, "each of them called the upstream");
    assert.equal((await post(alice.key, body)).headers.get("x-cache"), "hit");

    // no-store never writes: a fresh body asked with no-store first is still a miss afterwards.
    const fresh = { type: "summarize", input: `never stored ${Date.now()}` };
    await post(alice.key, fresh, { "cache-control": "no-store" });
    assert.equal((await post(alice.key, fresh)).headers.get("x-cache"), "miss");
  });

  test("GET /requests/{id} shows input and options; other users and unknown ids get 404", async () => {
    const created = await post(alice.key, { type: "classify", input: "meh", options: { labels: ["a", "b"] } });
    const mine = await service.call("GET", `/requests/${created.body.id}`, { key: alice.key });
    assert.equal(mine.status, 200);
    assert.equal(mine.body.input, "meh");
    assert.deepEqual(mine.body.options, { labels: ["a", "b"] });
    assert.deepEqual(mine.body.output, created.body.output);
    // Where its time went: the entry (limits and cache lookup) and the upstream, both within its latency.
    assert.equal(typeof mine.body.entry_ms, "number");
    assert.ok(mine.body.entry_ms > 0, `entry_ms ${mine.body.entry_ms}`);
    assert.ok(mine.body.upstream_ms >= 0, `upstream_ms ${mine.body.upstream_ms}`);
    assert.ok(
      mine.body.entry_ms + mine.body.upstream_ms <= mine.body.latency_ms + 1,
      `entry ${mine.body.entry_ms} + upstream ${mine.body.upstream_ms} within latency ${mine.body.latency_ms} (rounded)`,
    );

    const theirs = await service.call("GET", `/requests/${created.body.id}`, { key: bob.key });
    const unknown = await service.call("GET", "/requests/req_000000000000000000000", { key: bob.key });
    assert.equal(theirs.status, 404);
    assert.equal(unknown.status, 404);
    assert.equal(theirs.body.detail.replace(created.body.id, "X"), unknown.body.detail.replace(/req_\w+/, "X"));
    assert.equal(theirs.headers.get("content-type"), "application/problem+json; charset=utf-8");

    const malformed = await service.call("GET", "/requests/not-an-id", { key: alice.key });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.errors[0].path, "id");
  });

  test("GET /requests pages newest first with filters; DELETE removes input and output", async () => {
    const user = await service.createUser();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const type = i % 2 === 0 ? "summarize" : "translate";
      const body =
        type === "summarize"
          ? { type, input: `text ${i}` }
          : { type, input: `text ${i}`, options: { target_language: "es" } };
      const answer = await post(user.key, body);
      assert.equal(answer.status, 201);
      ids.push(answer.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/requests?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await service.call("GET", query, { key: user.key });
      assert.equal(page.status, 200);
      assert.ok(page.body.data.length <= 3);
      seen.push(...page.body.data.map((r: { id: string }) => r.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [...ids].reverse(), "every request once, newest first");

    const summaries = await service.call("GET", "/requests?type=summarize&limit=100", { key: user.key });
    assert.deepEqual(
      summaries.body.data.map((r: { id: string }) => r.id),
      ids.filter((_, i) => i % 2 === 0).reverse(),
    );
    const failed = await service.call("GET", "/requests?status=failed", { key: user.key });
    assert.deepEqual(failed.body.data, []);

    const deleted = await service.call("DELETE", `/requests/${ids[0]}`, { key: user.key });
    assert.equal(deleted.status, 204);
    assert.equal((await service.call("GET", `/requests/${ids[0]}`, { key: user.key })).status, 404);
    assert.equal((await service.call("DELETE", `/requests/${ids[0]}`, { key: user.key })).status, 404);
    const remaining = await service.call("GET", "/requests?limit=100", { key: user.key });
    assert.equal(remaining.body.data.length, 6);
    const row = await service.running.services.database.db.execute(
      // biome-ignore lint/suspicious/noExplicitAny: a raw check that the stored text is really gone.
      `select input, output, options from requests where id = '${ids[0]}'` as any,
    );
    const stored = (row as unknown as { rows: Array<Record<string, unknown>> }).rows[0];
    assert.deepEqual(stored, { input: null, output: null, options: null });

    // Another user cannot delete it.
    assert.equal((await service.call("DELETE", `/requests/${ids[1]}`, { key: alice.key })).status, 404);
  });

  test("an upstream failure past the retries is a 502 and the request is stored as failed", async () => {
    const user = await service.createUser();
    service.upstream!.setFaults({ failNext: [{ status: 500 }, { status: 500 }, { status: 500 }] });
    const answer = await post(user.key, { type: "summarize", input: "this will fail" });
    assert.equal(answer.status, 502, answer.text);
    assert.equal(answer.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.match(answer.body.type, /upstream-error$/);
    assert.match(answer.body.detail, /500/);
    const list = await service.call("GET", "/requests?status=failed", { key: user.key });
    assert.equal(list.body.data.length, 1);
    assert.equal(list.body.data[0].status, "failed");
    assert.equal(list.body.data[0].error.code, "upstream_error");
    const detail = await service.call("GET", `/requests/${list.body.data[0].id}`, { key: user.key });
    assert.equal(detail.body.retries, 2, "both retries were spent and recorded");
    assert.deepEqual(
      detail.body.attempts.map((a: { outcome: string }) => a.outcome),
      ["500", "500", "upstream_error"],
      "each attempt's outcome is recorded",
    );
    assert.equal(detail.body.input, "this will fail");
  });

  test("a retryable failure that clears up within the retries answers 201", async () => {
    service.upstream!.setFaults({ failNext: [{ status: 503 }, { status: 429, retryAfterSeconds: 0 }] });
    const answer = await post(alice.key, { type: "summarize", input: `flaky ${Date.now()}` });
    assert.equal(answer.status, 201, answer.text);
  });

  test("extract output that keeps failing the caller's schema is retried once, then a 502 naming the problem", async () => {
    const before = chatCalls();
    const answer = await post(alice.key, {
      type: "extract",
      input: "Nothing useful",
      // No integer is at least 10 and at most 5: whatever the model answers fails this schema.
      options: {
        schema: {
          type: "object",
          properties: { n: { type: "integer", minimum: 10, maximum: 5 } },
          required: ["n"],
        },
      },
      cache: false,
    });
    assert.equal(answer.status, 502, answer.text);
    assert.match(answer.body.type, /upstream-invalid-output$/);
    assert.match(answer.body.detail, /options\.schema/);
    assert.equal(chatCalls() - before, 2, "one retry, no more");
  });

  test("an extract schema requiring a property it does not declare is a 422 naming the path, with no upstream call", async () => {
    const user = await service.createUser();
    const object = (schema: Record<string, unknown>) => ({ type: "object", ...schema });
    const cases: Array<{ schema: Record<string, unknown>; path: string; name: string }> = [
      { schema: object({ required: ["name"] }), path: "options.schema.required.0", name: "name" },
      {
        schema: object({ properties: { name: {} }, required: ["name", "born"], additionalProperties: false }),
        path: "options.schema.required.1",
        name: "born",
      },
      {
        schema: object({ properties: { address: object({ properties: { city: {} }, required: ["zip"] }) } }),
        path: "options.schema.properties.address.required.0",
        name: "zip",
      },
      {
        schema: object({ properties: { people: { type: "array", items: object({ required: ["age"] }) } } }),
        path: "options.schema.properties.people.items.required.0",
        name: "age",
      },
      {
        schema: object({
          properties: { owner: { $ref: "#/$defs/person" } },
          $defs: { person: object({ properties: { name: {} }, required: ["email"] }) },
        }),
        path: "options.schema.$defs.person.required.0",
        name: "email",
      },
      {
        schema: object({ properties: { name: false }, required: ["name"] }),
        path: "options.schema.required.0",
        name: "name",
      },
    ];
    const upstreamBefore = service.upstream!.stats().totalRequests;
    for (const { schema, path, name } of cases) {
      const answer = await post(user.key, { type: "extract", input: "Ada Lovelace, born 1815.", options: { schema } });
      assert.equal(answer.status, 422, `${JSON.stringify(schema)}: ${answer.text}`);
      const error = answer.body.errors.find((e: { path: string }) => e.path === path);
      assert.ok(error, `the answer names ${path}: ${answer.text}`);
      assert.match(error.message, new RegExp(`"${name}"`), "the message names the property");
    }
    assert.equal(service.upstream!.stats().totalRequests, upstreamBefore, "the upstream received no call");
    const stored = await service.call("GET", "/requests", { key: user.key });
    assert.deepEqual(stored.body.data, [], "nothing was stored");

    // A name declared by a part combined with the object (here allOf) is declared: such a schema is answered.
    const combined = await post(user.key, {
      type: "extract",
      input: "Ada Lovelace",
      options: { schema: object({ allOf: [{ properties: { name: { type: "string" } } }], required: ["name"] }) },
    });
    assert.equal(combined.status, 201, combined.text);
  });

  test("authentication: missing, unknown and revoked keys are 401; user keys on admin routes 403", async () => {
    const body = { type: "summarize", input: "x" };
    const none = await service.call("POST", "/requests", { body });
    assert.equal(none.status, 401);
    assert.ok(none.headers.get("www-authenticate")?.startsWith("Bearer"));
    assert.equal((await post(`arh_${"x".repeat(40)}`, body)).status, 401);
    assert.equal((await post("not-a-key", body)).status, 401);
    assert.equal((await service.call("GET", "/admin/users", { key: alice.key })).status, 403);

    const user = await service.createUser();
    assert.equal((await post(user.key, body)).status, 201);
    const revoked = await service.call("DELETE", `/admin/keys/${user.keyId}`, { key: service.adminKey });
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revoked_at);
    assert.equal((await post(user.key, body)).status, 401, "revoked at once, despite the key cache");
  });

  test("the log has one line per request with its fields, and never a key or a prompt", async () => {
    const secret = `very secret prompt ${Date.now()}`;
    const answer = await post(alice.key, { type: "summarize", input: secret });
    const line = service.logs.find((entry) => entry.msg === "request" && entry.requestRecordId === answer.body.id);
    assert.ok(line, "a request line was logged");
    assert.equal(line.userId, alice.id);
    assert.equal(line.type, "summarize");
    assert.equal(line.status, 201);
    assert.equal(line.cache, "miss");
    assert.equal(typeof line.model, "string");
    assert.equal(typeof line.latencyMs, "number");
    const text = service.logText();
    assert.ok(!text.includes(secret), "no prompt in the log");
    assert.ok(!text.includes(String(answer.body.output)), "no output in the log");
    assert.ok(!text.includes(alice.key), "no user key in the log");
    assert.ok(!text.includes(service.adminKey), "no admin key in the log");
  });

  test("x-request-id: the client's own is echoed, a fresh one otherwise", async () => {
    const own = await service.call("GET", "/health", { headers: { "x-request-id": "my-trace-123" } });
    assert.equal(own.headers.get("x-request-id"), "my-trace-123");
    const fresh = await service.call("GET", "/health", { headers: { "x-request-id": "bad id with spaces" } });
    assert.match(fresh.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });

  test("/metrics has the contract's series", async () => {
    const metrics = await service.call("GET", "/metrics", { key: service.adminKey });
    assert.equal(metrics.status, 200);
    for (const series of [
      'arh_http_requests_total{route="/requests",method="POST",status="201"}',
      'arh_model_requests_total{type="summarize"',
      "arh_http_request_duration_seconds_bucket",
      "arh_upstream_duration_seconds_bucket",
      'arh_cache_lookups_total{result="hit"}',
      'arh_cache_lookups_total{result="miss"}',
      'arh_tokens_total{kind="prompt"',
      "arh_cost_usd_total",
      "arh_upstream_retries_total",
      "arh_upstream_errors_total",
    ]) {
      assert.ok(metrics.text.includes(series), `metrics include ${series}`);
    }
    assert.equal((await service.call("GET", "/metrics")).status, 401);
  });
});
