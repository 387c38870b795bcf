import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { type RedisForTest, redisFor, redisModes } from "./helpers/redis-modes.ts";
import { type CallResult, startTestService, type TestService } from "./helpers/service.ts";

/**
 * Two instances of the service on different ports, sharing one PostgreSQL database, one Redis and one mock
 * upstream, as two replicas behind a load balancer would.
 */
for (const mode of redisModes)
  describe(`two instances sharing PostgreSQL and Redis (${mode})`, () => {
    let redis: RedisForTest;
    let database: TestPostgres;
    let upstream: MockUpstream;
    let a: TestService;
    let b: TestService;
    const adminKey = `admin-${randomBytes(16).toString("hex")}`;
    // Far longer than the one second allowed below: only the invalidation through Redis can make it in time.
    const env = { ADMIN_API_KEY: adminKey, KEY_CACHE_TTL_MS: "60000" };

    before(async () => {
      redis = await redisFor(mode);
      database = await createTestPostgres();
      upstream = await startMockUpstream({ port: 0, apiKey: "sk-test-upstream" });
      const options = { databaseUrl: database.url, upstream, redis: false, env: { ...env, ...redis.env } };
      a = await startTestService(options);
      b = await startTestService(options);
      assert.notEqual(a.url, b.url);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await upstream?.close();
      await database?.close();
      await redis?.close();
    });

    /** Calls `attempt` until `done` says so or one second has passed; returns how long it took. */
    async function within(
      ms: number,
      attempt: () => Promise<CallResult>,
      done: (r: CallResult) => boolean,
    ): Promise<number> {
      const started = performance.now();
      for (;;) {
        const result = await attempt();
        const elapsed = performance.now() - started;
        if (done(result)) return elapsed;
        if (elapsed > ms) assert.fail(`not within ${ms} ms: still ${result.status} ${result.text.slice(0, 200)}`);
        await sleep(25);
      }
    }

    describe("revocation across instances", () => {
      test("a key revoked on instance A stops working on instance B within one second", async () => {
        const user = await a.createUser();
        // Both instances have verified (and cached) the key.
        assert.equal((await a.call("GET", "/me", { key: user.key })).status, 200);
        assert.equal((await b.call("GET", "/me", { key: user.key })).status, 200);

        const revoked = await a.call("DELETE", `/admin/keys/${user.keyId}`, { key: adminKey });
        assert.equal(revoked.status, 200);
        assert.equal((await a.call("GET", "/me", { key: user.key })).status, 401, "at once on A");
        const took = await within(
          1_000,
          () => b.call("GET", "/me", { key: user.key }),
          (r) => r.status === 401,
        );
        assert.ok(took < 1_000, `B refused it after ${Math.round(took)} ms`);
      });

      test("a user disabled on A is refused on B within one second, and re-enabled likewise", async () => {
        const user = await a.createUser();
        assert.equal((await b.call("GET", "/me", { key: user.key })).status, 200);
        const disabled = await a.call("PATCH", `/admin/users/${user.id}`, { key: adminKey, body: { disabled: true } });
        assert.equal(disabled.status, 200);
        await within(
          1_000,
          () => b.call("GET", "/me", { key: user.key }),
          (r) => r.status === 401,
        );
        await a.call("PATCH", `/admin/users/${user.id}`, { key: adminKey, body: { disabled: false } });
        await within(
          1_000,
          () => b.call("GET", "/me", { key: user.key }),
          (r) => r.status === 200,
        );
      });

      test("changed limits reach B's cached user within one second", async () => {
        const user = await a.createUser();
        assert.equal((await b.call("GET", "/me", { key: user.key })).body.limits.rpm, null);
        await a.call("PATCH", `/admin/users/${user.id}`, { key: adminKey, body: { limits: { rpm: 42 } } });
        await within(
          1_000,
          () => b.call("GET", "/me", { key: user.key }),
          (r) => r.body?.limits?.rpm === 42,
        );
      });

      test("a key revoked from the command line stops working on both within one second", async () => {
        const user = await a.createUser();
        assert.equal((await a.call("GET", "/me", { key: user.key })).status, 200);
        assert.equal((await b.call("GET", "/me", { key: user.key })).status, 200);
        await promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli.ts", "keys", "revoke", user.keyId], {
          env: { ...process.env, DATABASE_URL: database.url, ...redis.env, LOG_LEVEL: "silent" },
        });
        for (const instance of [a, b]) {
          await within(
            1_000,
            () => instance.call("GET", "/me", { key: user.key }),
            (r) => r.status === 401,
          );
        }
      });
    });

    /**
     * These need the limiter wired into the request pipeline (admitRequest before the cache lookup, reserve/settle
     * around the upstream call); they fail until it is.
     */
    describe("limits across instances", () => {
      async function userWithLimits(limits: Record<string, number>) {
        const user = await a.createUser();
        const patched = await a.call("PATCH", `/admin/users/${user.id}`, { key: adminKey, body: { limits } });
        assert.equal(patched.status, 200, patched.text);
        return user;
      }

      test("a 10-rpm user sending 30 requests spread over both instances gets exactly 10 through", async () => {
        const user = await userWithLimits({ rpm: 10 });
        const answers = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            (i % 2 === 0 ? a : b).call("POST", "/requests", {
              key: user.key,
              body: { type: "summarize", input: `rpm test ${i}`, cache: false },
            }),
          ),
        );
        const statuses = answers.map((answer) => answer.status);
        assert.equal(statuses.filter((status) => status === 201).length, 10, statuses.join(","));
        const refused = answers.filter((answer) => answer.status !== 201);
        assert.equal(refused.length, 20);
        for (const answer of refused) {
          assert.equal(answer.status, 429, answer.text);
          assert.match(answer.body.type, /rate-limited$/);
          const retryAfter = Number(answer.headers.get("retry-after"));
          assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
          assert.equal(answer.headers.get("x-ratelimit-limit-requests"), "10");
          assert.equal(answer.headers.get("x-ratelimit-remaining-requests"), "0");
          assert.match(answer.headers.get("x-ratelimit-reset-requests") ?? "", /^\d+(\.\d+)?(ms|s)$|^1m0s$/);
        }
        const stored = await a.call("GET", "/me/usage", { key: user.key });
        assert.equal(stored.body.totals.requests, 10, "refused requests cost nothing and are not stored as spent");
      });

      test("a monthly budget is not overshot by 20 concurrent requests spread over both instances", async () => {
        const body = (i: number) => ({
          type: "summarize",
          input: `budget test ${i}: ${"the quick brown fox jumps over the lazy dog ".repeat(4)}`,
          options: { max_tokens: 40 },
          cache: false,
        });
        // What one such request costs, measured on a user without a budget.
        const probe = await a.createUser();
        const sample = await a.call("POST", "/requests", { key: probe.key, body: body(0) });
        assert.equal(sample.status, 201, sample.text);
        const cost = sample.body.cost_usd as number;
        assert.ok(cost > 0);

        // Room for about five, whatever the order they arrive in.
        const budgetUsd = Number((cost * 5.5).toFixed(9));
        const user = await userWithLimits({ monthly_budget_usd: budgetUsd });
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? a : b).call("POST", "/requests", { key: user.key, body: body(i) }),
          ),
        );
        const passed = answers.filter((answer) => answer.status === 201);
        const refused = answers.filter((answer) => answer.status !== 201);
        assert.ok(passed.length >= 1, "some fit");
        assert.ok(refused.length >= 1, "not all fit");
        for (const answer of refused) {
          assert.equal(answer.status, 429, answer.text);
          assert.match(answer.body.type, /budget-exceeded$/);
        }
        const spent = passed.reduce((sum, answer) => sum + (answer.body.cost_usd as number), 0);
        assert.ok(spent <= budgetUsd + 1e-12, `spent ${spent} of a budget of ${budgetUsd}`);
        const me = await b.call("GET", "/me", { key: user.key });
        assert.ok(me.body.usage.this_month.cost_usd <= budgetUsd + 1e-12, JSON.stringify(me.body.usage.this_month));
        assert.ok(Math.abs(me.body.usage.this_month.cost_usd - spent) < 1e-9, "every success recorded, once");
      });
    });
  });
