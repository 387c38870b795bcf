import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { startTestService, type TestService } from "./helpers/service.ts";

// /auth/session is where a key is exchanged for a session, so it takes none (test/session.test.ts covers it).
const publicPath = (path: string) =>
  path === "/health" ||
  path === "/ready" ||
  path === "/openapi.json" ||
  path === "/docs" ||
  path.startsWith("/docs/") ||
  path === "/auth/session";

/** A well-formed id of the kind the path expects, so the route's own checks would pass if auth did not stop it. */
function fillPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (name !== "id") return "x";
    if (path.includes("/users/")) return "usr_000000000000000000000";
    if (path.includes("/keys/")) return "key_000000000000000000000";
    return "req_000000000000000000000";
  });
}

/**
 * A loopback address of its own (Linux routes all of 127/8 to lo), so this run's failures never count against
 * 127.0.0.1, which every other test uses, nor against an earlier run's address.
 */
const randomLoopback = () => `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answer fields freely and assert on them.
  body: any;
}

async function callFrom(agent: Agent, url: string, key: string | undefined, method = "GET"): Promise<Answer> {
  const withBody = method === "POST" || method === "PATCH";
  const answer = await request(url, {
    dispatcher: agent,
    method: method as "GET",
    headers: {
      ...(key && { authorization: `Bearer ${key}` }),
      ...(withBody && { "content-type": "application/json" }),
    },
    body: withBody ? "{}" : undefined,
  });
  const text = await answer.body.text();
  return { status: answer.statusCode, headers: answer.headers, body: text ? JSON.parse(text) : undefined };
}

describe("security: authentication on every route", () => {
  let service: TestService;
  let user: { id: string; key: string };
  // Unknown keys are sent from an address of their own, so they count against no other test's address.
  const guesser = randomLoopback();
  const guesserAgent = new Agent({ localAddress: guesser });
  let redis: Redis;

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: true, provider: "builtin" });
    user = await service.createUser();
    redis = new Redis("redis://127.0.0.1:6379");
  });
  after(async () => {
    await redis.del(`arh:authfail:${guesser}`);
    await redis.quit();
    await guesserAgent.close();
    await service.close();
  });

  test("every non-public route of the OpenAPI document answers 401 without a key; admin routes 403 for a user key", async () => {
    const document = await service.call("GET", "/openapi.json");
    assert.equal(document.status, 200);
    const operations: Array<{ method: string; path: string }> = [];
    for (const [path, item] of Object.entries(document.body.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(item)) {
        if (["get", "post", "put", "patch", "delete"].includes(method)) operations.push({ method, path });
      }
    }
    const checked = operations.filter((operation) => !publicPath(operation.path));
    // The walk must not pass by finding nothing: these exist today and must stay protected.
    for (const expected of ["/requests", "/requests/{id}", "/admin/users", "/admin/keys/{id}", "/me", "/me/usage"]) {
      assert.ok(
        checked.some((operation) => operation.path === expected),
        `${expected} is in the OpenAPI document`,
      );
    }

    const failures: string[] = [];
    for (const { method, path } of checked) {
      const url = fillPath(path);
      const name = `${method.toUpperCase()} ${url}`;
      const body = method === "post" || method === "patch" ? {} : undefined;
      const anonymous = await service.call(method.toUpperCase(), url, { body });
      if (anonymous.status !== 401) failures.push(`${name} without a key: ${anonymous.status}`);
      const wrong = await callFrom(guesserAgent, service.url + url, `arh_${"0".repeat(40)}`, method.toUpperCase());
      if (wrong.status !== 401) failures.push(`${name} with an unknown key: ${wrong.status}`);
      if (path.startsWith("/admin/") || path === "/metrics") {
        const asUser = await service.call(method.toUpperCase(), url, { body, key: user.key });
        if (asUser.status !== 403) failures.push(`${name} with a user key: ${asUser.status}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test("/metrics is not in the way of the walk: it is an admin route (403 for a user, 200 for the operator)", async () => {
    assert.equal((await service.call("GET", "/metrics", { key: user.key })).status, 403);
    assert.equal((await service.call("GET", "/metrics", { key: service.adminKey })).status, 200);
  });

  test("security headers on every answer: success, error, not found, and the docs page with its own policy", async () => {
    for (const [path, key, status] of [
      ["/health", undefined, 200],
      ["/requests", undefined, 401],
      ["/me", user.key, 200],
      ["/nope", user.key, 404],
    ] as const) {
      const answer = await service.call("GET", path, { key });
      assert.equal(answer.status, status, `${path}: ${answer.text}`);
      assert.equal(answer.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(answer.headers.get("x-frame-options"), "DENY", path);
      assert.equal(answer.headers.get("referrer-policy"), "no-referrer", path);
      assert.equal(answer.headers.get("content-security-policy"), "default-src 'none'; frame-ancestors 'none'", path);
      assert.match(answer.headers.get("strict-transport-security") ?? "", /^max-age=\d+/, path);
    }
    const authenticated = await service.call("GET", "/me", { key: user.key });
    assert.equal(authenticated.headers.get("cache-control"), "no-store");

    const docs = await service.call("GET", "/docs/");
    assert.equal(docs.status, 200);
    const policy = docs.headers.get("content-security-policy") ?? "";
    assert.match(policy, /script-src 'self'/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.doesNotMatch(policy, /script-src[^;]*unsafe-inline/, "no inline scripts on the docs page");
    // Every script the page loads comes from this origin, which the policy allows.
    const scripts = [...docs.text.matchAll(/<script src="([^"]+)"/g)].map((match) => match[1] ?? "");
    assert.ok(scripts.length >= 2);
    for (const script of scripts) {
      const loaded = await service.call("GET", new URL(script, `${service.url}/docs/`).pathname);
      assert.equal(loaded.status, 200, script);
    }
  });

  test("CORS is off unless configured: no Access-Control-* header, preflight refused", async () => {
    const origin = { origin: "https://app.example.com" };
    const simple = await service.call("GET", "/health", { headers: origin });
    assert.equal(simple.headers.get("access-control-allow-origin"), null);
    const preflight = await service.call("OPTIONS", "/requests", {
      headers: { ...origin, "access-control-request-method": "POST" },
    });
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    assert.notEqual(preflight.status, 204);
  });
});

describe("security: failed authentication per address, and CORS when configured", () => {
  let service: TestService;
  let user: { id: string; key: string };
  let redis: Redis;
  const attacker = randomLoopback();
  let bystander = randomLoopback();
  while (bystander === attacker) bystander = randomLoopback();
  const agents = new Map<string, Agent>();

  before(async () => {
    service = await startTestService({
      backend: "postgres",
      redis: true,
      provider: "builtin",
      env: {
        AUTH_FAILURE_LIMIT: "5",
        AUTH_FAILURE_BLOCK_SECONDS: "120",
        CORS_ORIGINS: "https://app.example.com,http://localhost:5173",
      },
    });
    user = await service.createUser();
    redis = new Redis("redis://127.0.0.1:6379");
    for (const address of [attacker, bystander]) agents.set(address, new Agent({ localAddress: address }));
  });
  after(async () => {
    await redis.del(`arh:authfail:${attacker}`, `arh:authfail:${bystander}`);
    await redis.quit();
    for (const agent of agents.values()) await agent.close();
    await service.close();
  });

  const from = (address: string, path: string, key?: string) =>
    callFrom(agents.get(address)!, `${service.url}${path}`, key);

  test("an address that keeps failing is refused with 429; another address and missing keys are not affected", async () => {
    const guess = `arh_${"g".repeat(40)}`;
    for (let i = 1; i <= 5; i++) {
      const answer = await from(attacker, "/me", guess);
      assert.equal(answer.status, 401, `failure ${i} is an ordinary 401`);
    }
    const sixth = await from(attacker, "/me", guess);
    assert.equal(sixth.status, 429);
    assert.match(sixth.body.type, /rate-limited$/);
    const retryAfter = Number(sixth.headers["retry-after"]);
    assert.ok(retryAfter > 60 && retryAfter <= 120, `Retry-After ${retryAfter}`);
    // Blocked is blocked: even a good key from that address waits, so guessing cannot resume by mixing them in.
    assert.equal((await from(attacker, "/me", user.key)).status, 429);

    // Another address is untouched: its failure is a 401, its good key works.
    assert.equal((await from(bystander, "/me", guess)).status, 401);
    assert.equal((await from(bystander, "/me", user.key)).status, 200);
    // The count is shared through Redis, so every instance sees the same address.
    assert.ok(Number(await redis.get(`arh:authfail:${attacker}`)) >= 6);

    const metrics = await service.call("GET", "/metrics", { key: service.adminKey });
    assert.match(metrics.text, /arh_rate_limit_rejections_total\{limit="auth"\} [1-9]/);
  });

  test("CORS for the configured origins only, on success and on errors", async () => {
    const preflight = await service.call("OPTIONS", "/requests", {
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os",
      },
    });
    assert.equal(preflight.status, 204, preflight.text);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /authorization/);
    assert.equal(preflight.headers.get("access-control-allow-credentials"), null, "keys, not cookies");

    const allowed = await service.call("GET", "/me", { key: user.key, headers: { origin: "http://localhost:5173" } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get("access-control-allow-origin"), "http://localhost:5173");
    assert.match(allowed.headers.get("access-control-expose-headers") ?? "", /x-ratelimit-remaining-requests/);

    const refused = await service.call("GET", "/me", { headers: { origin: "https://app.example.com" } });
    assert.equal(refused.status, 401);
    assert.equal(
      refused.headers.get("access-control-allow-origin"),
      "https://app.example.com",
      "a browser app can read the 401",
    );

    const stranger = await service.call("GET", "/me", { key: user.key, headers: { origin: "https://evil.example" } });
    assert.equal(stranger.headers.get("access-control-allow-origin"), null);
  });
});
