import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestService, type TestService } from "./helpers/service.ts";

/** Every bad input of the contract: a 4xx naming the field, never a 500, and nothing stored. */
describe("bad input", () => {
  let service: TestService;
  let user: { id: string; key: string };

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: false, provider: "builtin" });
    user = await service.createUser();
  });
  after(() => service.close());

  const valid = { type: "summarize", input: "text" };
  const cases: Array<{
    name: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    status: number;
    field: string;
  }> = [
    {
      name: "malformed JSON",
      rawBody: '{"type": "chat",',
      headers: { "content-type": "application/json" },
      status: 400,
      field: "body",
    },
    {
      name: "empty JSON body",
      rawBody: "",
      headers: { "content-type": "application/json" },
      status: 400,
      field: "body",
    },
    { name: "JSON that is not an object", body: [1, 2], status: 422, field: "body" },
    { name: "unknown type", body: { type: "poem", input: "x" }, status: 400, field: "type" },
    { name: "missing type", body: { input: "x" }, status: 400, field: "type" },
    { name: "type of the wrong type", body: { type: 7, input: "x" }, status: 400, field: "type" },
    { name: "input of the wrong type", body: { type: "summarize", input: 42 }, status: 422, field: "input" },
    { name: "missing input", body: { type: "summarize" }, status: 422, field: "input" },
    { name: "empty input", body: { type: "summarize", input: "" }, status: 422, field: "input" },
    { name: "blank input", body: { type: "summarize", input: "   " }, status: 422, field: "input" },
    { name: "empty message list", body: { type: "chat", input: [] }, status: 422, field: "input" },
    {
      name: "bad message role",
      body: { type: "chat", input: [{ role: "robot", content: "x" }] },
      status: 422,
      field: "input.0.role",
    },
    {
      name: "translate without options",
      body: { type: "translate", input: "x" },
      status: 422,
      field: "options.target_language",
    },
    { name: "classify without options", body: { type: "classify", input: "x" }, status: 422, field: "options.labels" },
    { name: "extract without options", body: { type: "extract", input: "x" }, status: 422, field: "options.schema" },
    {
      name: "translate with options but no target_language",
      body: { type: "translate", input: "x", options: {} },
      status: 422,
      field: "options.target_language",
    },
    {
      name: "classify without labels",
      body: { type: "classify", input: "x", options: {} },
      status: 422,
      field: "options.labels",
    },
    {
      name: "classify with one label",
      body: { type: "classify", input: "x", options: { labels: ["a"] } },
      status: 422,
      field: "options.labels",
    },
    {
      name: "classify with 51 labels",
      body: { type: "classify", input: "x", options: { labels: Array.from({ length: 51 }, (_, i) => `l${i}`) } },
      status: 422,
      field: "options.labels",
    },
    {
      name: "classify with duplicate labels",
      body: { type: "classify", input: "x", options: { labels: ["a", "a"] } },
      status: 422,
      field: "options.labels",
    },
    {
      name: "extract without schema",
      body: { type: "extract", input: "x", options: {} },
      status: 422,
      field: "options.schema",
    },
    {
      name: "extract with a non-object schema",
      body: { type: "extract", input: "x", options: { schema: { type: "string" } } },
      status: 422,
      field: "options.schema",
    },
    {
      name: "extract with an invalid JSON Schema",
      body: {
        type: "extract",
        input: "x",
        options: { schema: { type: "object", properties: { a: { type: "nonsense" } } } },
      },
      status: 422,
      field: "options.schema",
    },
    {
      name: "temperature out of range",
      body: { ...valid, options: { temperature: 5 } },
      status: 422,
      field: "options.temperature",
    },
    {
      name: "max_tokens not an integer",
      body: { ...valid, options: { max_tokens: 1.5 } },
      status: 422,
      field: "options.max_tokens",
    },
    {
      name: "unknown summarize length",
      body: { ...valid, options: { length: "huge" } },
      status: 422,
      field: "options.length",
    },
    { name: "unknown option", body: { ...valid, options: { tempreature: 1 } }, status: 422, field: "options" },
    { name: "unknown top-level field", body: { ...valid, inptu: "x" }, status: 422, field: "" },
    { name: "cache not a boolean", body: { ...valid, cache: "yes" }, status: 422, field: "cache" },
    { name: "metadata value not a string", body: { ...valid, metadata: { a: 1 } }, status: 422, field: "metadata.a" },
    {
      name: "metadata with 17 keys",
      body: { ...valid, metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) },
      status: 422,
      field: "metadata",
    },
    { name: "model too long", body: { ...valid, model: "m".repeat(200) }, status: 422, field: "model" },
    {
      name: "wrong content type",
      rawBody: "type=summarize",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      status: 415,
      field: "content-type",
    },
    {
      name: "text/plain body",
      rawBody: JSON.stringify(valid),
      headers: { "content-type": "text/plain" },
      status: 415,
      field: "content-type",
    },
    {
      name: "oversize body",
      body: { type: "summarize", input: "x".repeat(1024 * 1024 + 10) },
      status: 413,
      field: "body",
    },
  ];

  for (const c of cases) {
    test(`POST /requests: ${c.name} → ${c.status} naming ${c.field || "the field"}`, async () => {
      const answer = await service.call("POST", "/requests", {
        key: user.key,
        body: c.body,
        rawBody: c.rawBody,
        headers: c.headers,
      });
      assert.equal(answer.status, c.status, answer.text);
      assert.equal(answer.headers.get("content-type"), "application/problem+json; charset=utf-8");
      assert.equal(answer.body.status, c.status);
      assert.ok(answer.body.title && answer.body.detail && answer.body.type, "an RFC 9457 problem");
      if (c.field) {
        const paths = (answer.body.errors ?? []).map((e: { path: string }) => e.path);
        assert.ok(
          paths.some((path: string) => path === c.field || path.startsWith(`${c.field}.`)) ||
            answer.body.detail.includes(c.field),
          `the answer names ${c.field}: ${answer.text}`,
        );
      }
    });
  }

  test("query and path parameters", async () => {
    for (const [path, field] of [
      ["/requests?limit=0", "limit"],
      ["/requests?limit=101", "limit"],
      ["/requests?limit=abc", "limit"],
      ["/requests?type=poem", "type"],
      ["/requests?status=done", "status"],
      ["/requests?cursor=garbage", "cursor"],
      ["/requests?cursor=eyJmb28iOiJiYXIifQ", "cursor"],
      ["/requests/12345", "id"],
      ["/requests/usr_000000000000000000000", "id"],
    ] as const) {
      const answer = await service.call("GET", path, { key: user.key });
      assert.equal(answer.status, 400, `${path}: ${answer.text}`);
      assert.ok(
        answer.body.errors.some((e: { path: string }) => e.path === field),
        `${path} names ${field}: ${answer.text}`,
      );
    }
  });

  test("none of the bad requests was stored", async () => {
    const list = await service.call("GET", "/requests?limit=100", { key: user.key });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data, []);
  });

  test("unknown routes and methods are 404 problems", async () => {
    const answer = await service.call("GET", "/nope", { key: user.key });
    assert.equal(answer.status, 404);
    assert.equal(answer.body.status, 404);
  });
});

describe("bad admin input", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ backend: "postgres", redis: false, provider: "builtin" });
  });
  after(() => service.close());

  test("users and keys", async () => {
    const admin = (method: string, path: string, body?: unknown) =>
      service.call(method, path, { key: service.adminKey, body });
    const cases: Array<[string, string, unknown, number, string]> = [
      ["POST", "/admin/users", { email: "not-an-email" }, 422, "email"],
      ["POST", "/admin/users", {}, 422, "email"],
      ["POST", "/admin/users", { email: "a@example.com", role: "root" }, 422, "role"],
      ["POST", "/admin/users", { email: "a@example.com", limits: { rpm: -1 } }, 422, "limits.rpm"],
      ["POST", "/admin/users", { email: "a@example.com", limits: { tpm: 1e12 } }, 422, "limits.tpm"],
      [
        "POST",
        "/admin/users",
        { email: "a@example.com", limits: { monthly_budget_usd: "ten" } },
        422,
        "limits.monthly_budget_usd",
      ],
      ["POST", "/admin/users/usr_000000000000000000000/keys", {}, 404, ""],
      ["POST", "/admin/users/nope/keys", {}, 400, "id"],
      ["GET", "/admin/users/nope", undefined, 400, "id"],
    ];
    for (const [method, path, body, status, field] of cases) {
      const answer = await admin(method, path, body);
      assert.equal(answer.status, status, `${method} ${path} ${JSON.stringify(body)}: ${answer.text}`);
      if (field)
        assert.ok(
          answer.body.errors.some((e: { path: string }) => e.path === field),
          answer.text,
        );
    }
    const user = await admin("POST", "/admin/users", { email: "Dup@Example.com" });
    assert.equal(user.status, 201);
    assert.equal(user.body.email, "dup@example.com");
    const duplicate = await admin("POST", "/admin/users", { email: "dup@example.com" });
    assert.equal(duplicate.status, 409);
    const past = await admin("POST", `/admin/users/${user.body.id}/keys`, { expires_at: "2020-01-01T00:00:00Z" });
    assert.equal(past.status, 422);
    assert.ok(past.body.errors.some((e: { path: string }) => e.path === "expires_at"));
    const badDate = await admin("POST", `/admin/users/${user.body.id}/keys`, { expires_at: "tomorrow" });
    assert.equal(badDate.status, 422);

    const id = user.body.id as string;
    const more: Array<[string, string, unknown, number, string]> = [
      ["POST", "/admin/users", { email: "b@example.com", limits: { tpm: 0 } }, 422, "limits.tpm"],
      ["POST", "/admin/users", { email: "b@example.com", limits: { rpm: 1.5 } }, 422, "limits.rpm"],
      [
        "POST",
        "/admin/users",
        { email: "b@example.com", limits: { monthly_budget_usd: -1 } },
        422,
        "limits.monthly_budget_usd",
      ],
      ["POST", "/admin/users", { email: "b@example.com", limits: { rpmm: 1 } }, 422, "limits"],
      ["POST", "/admin/users", { email: 42 }, 422, "email"],
      ["PATCH", `/admin/users/${id}`, { disabled: "yes" }, 422, "disabled"],
      ["PATCH", `/admin/users/${id}`, { limits: { rpm: -5 } }, 422, "limits.rpm"],
      ["PATCH", `/admin/users/${id}`, { email: "new@example.com" }, 422, ""],
      ["PATCH", "/admin/users/usr_000000000000000000000", { disabled: true }, 404, ""],
      ["POST", `/admin/users/${id}/keys`, { limits: { rpm: -1 } }, 422, "limits.rpm"],
      ["POST", `/admin/users/${id}/keys`, { limits: { tpm: "many" } }, 422, "limits.tpm"],
      ["POST", `/admin/users/${id}/keys`, { name: "" }, 422, "name"],
      ["POST", `/admin/users/${id}/keys`, { expires_at: 1_900_000_000 }, 422, "expires_at"],
      ["DELETE", "/admin/keys/key_000000000000000000000", undefined, 404, ""],
      ["DELETE", "/admin/keys/nope", undefined, 400, "id"],
      ["GET", "/admin/users?limit=0", undefined, 400, "limit"],
    ];
    for (const [method, path, body, status, field] of more) {
      const answer = await admin(method, path, body);
      assert.equal(answer.status, status, `${method} ${path} ${JSON.stringify(body)}: ${answer.text}`);
      if (field) {
        assert.ok(
          answer.body.errors.some((e: { path: string }) => e.path === field),
          `${method} ${path} names ${field}: ${answer.text}`,
        );
      }
    }
  });
});
