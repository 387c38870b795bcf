/**
 * Losing a dependency, and losing the process: what clients see and what is stored when Redis or PostgreSQL goes
 * away and comes back, when the service gets SIGTERM with requests in flight, and when it is killed outright.
 *
 * Redis and PostgreSQL are taken away from servers of the test's own (a throwaway redis-server, a throwaway initdb
 * cluster), never from the shared ones; SIGTERM and SIGKILL go to the service running as a child process.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { after, before, describe, type TestContext, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { pollUntil } from "./helpers/processes.ts";
import { startTestService } from "./helpers/service.ts";
import { exitWithin, type ServiceProcess, startServiceProcess } from "./helpers/service-process.ts";
import { startThrowawayPostgres } from "./helpers/throwaway-postgres.ts";
import { startThrowawayRedis } from "./helpers/throwaway-redis.ts";

const upstreamKey = "sk-test-upstream";

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answer fields freely and assert on them.
  body: any;
  text: string;
}

/** One HTTP call with a deadline, so a hung service fails the test instead of stalling the file. */
async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(baseUrl + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the text is the body
  }
  return { status: response.status, headers: response.headers, body, text };
}

const summarize = (input: string, cache = true) => ({ type: "summarize", input, cache });
const unique = (label: string) => `${label} ${randomBytes(8).toString("hex")}`;

/** The longest one cleanup step may take: a hung close must fail the test, not stall the whole file. */
const cleanupStepTimeoutMs = 30_000;

/**
 * Cleanups run in reverse order of registration, each one even when an earlier one fails, each bounded by
 * `cleanupStepTimeoutMs`; a step that fails or hangs is named in the test's failure.
 */
function cleanupStack(t: TestContext) {
  const steps: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    const failures: unknown[] = [];
    for (const step of steps.reverse()) {
      const timer = new AbortController();
      const hung = delay(cleanupStepTimeoutMs, "hung" as const, { signal: timer.signal }).catch(() => "done" as const);
      try {
        const outcome = await Promise.race([step().then(() => "done" as const), hung]);
        if (outcome === "hung") {
          failures.push(new Error(`cleanup step ${step.toString()} did not finish within ${cleanupStepTimeoutMs} ms`));
        }
      } catch (error) {
        failures.push(error);
      } finally {
        timer.abort();
      }
    }
    if (failures.length) throw new AggregateError(failures, `cleanup failed: ${failures.map(String).join("; ")}`);
  });
  return (step: () => Promise<unknown>) => {
    steps.push(step);
  };
}

/** A user and a key, made through the admin API of a service reachable at `baseUrl`. */
async function createUser(baseUrl: string, adminKey: string): Promise<{ id: string; key: string }> {
  const user = await call(baseUrl, "POST", "/admin/users", {
    key: adminKey,
    body: { email: `${unique("user").replace(" ", "-")}@example.com` },
  });
  assert.equal(user.status, 201, user.text);
  const key = await call(baseUrl, "POST", `/admin/users/${user.body.id}/keys`, { key: adminKey, body: {} });
  assert.equal(key.status, 201, key.text);
  return { id: user.body.id, key: key.body.key };
}

/** The ids among `ids` that are stored in the `requests` table of the database at `url`. */
async function storedIds(url: string, ids: readonly string[]): Promise<Set<string>> {
  const client = new pg.Client({ connectionString: url, application_name: "arh-outages-test" });
  await client.connect();
  try {
    const result = await client.query<{ id: string }>("select id from requests where id = any($1::text[])", [ids]);
    return new Set(result.rows.map((row) => row.id));
  } finally {
    await client.end();
  }
}

const adminKey = () => `admin-${randomBytes(16).toString("hex")}`;

describe("dependency outages", () => {
  test("Redis killed and restarted under load: no failed answer, /ready names redis while it is away, the cache comes back", {
    timeout: 60_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const redis = await startThrowawayRedis();
    cleanup(() => redis.close());
    const database = await createTestPostgres();
    cleanup(() => database.close());
    const service = await startTestService({ databaseUrl: database.url, env: { REDIS_URL: redis.url } });
    cleanup(() => service.close());
    const user = await service.createUser();

    const ready = await service.call("GET", "/ready");
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.body.checks.redis, "ok");
    // The cache really is this Redis: a repeat is a hit before anything happens.
    const warm = unique("warm");
    assert.equal((await service.call("POST", "/requests", { key: user.key, body: summarize(warm) })).status, 201);
    const warmRepeat = await service.call("POST", "/requests", { key: user.key, body: summarize(warm) });
    assert.equal(warmRepeat.headers.get("x-cache"), "hit");

    // Steady load: 4 workers cycling through what touches Redis: a repeat of a few inputs (cache hits while Redis is
    // up), a unique input (a miss and a fill), a unique input with an Idempotency-Key, and an OpenAI-style call.
    const repeats = Array.from({ length: 5 }, (_, i) => `repeat ${i} ${randomBytes(4).toString("hex")}`);
    type Phase = "before" | "down" | "after";
    let phase: Phase = "before";
    let running = true;
    const counts: Record<Phase, { total: number; failed: number; hits: number; slowestMs: number }> = {
      before: { total: 0, failed: 0, hits: 0, slowestMs: 0 },
      down: { total: 0, failed: 0, hits: 0, slowestMs: 0 },
      after: { total: 0, failed: 0, hits: 0, slowestMs: 0 },
    };
    const failures: string[] = [];
    const answered201: string[] = [];
    const worker = async (n: number) => {
      for (let i = 0; running; i++) {
        const repeat = repeats[(n + i) % repeats.length]!;
        const kind = i % 4;
        const at = phase;
        const sentAt = Date.now();
        try {
          const answer =
            kind === 3
              ? await call(service.url, "POST", "/v1/chat/completions", {
                  key: user.key,
                  body: { model: "gpt-4o-mini", messages: [{ role: "user", content: repeat }] },
                })
              : await call(service.url, "POST", "/requests", {
                  key: user.key,
                  body: summarize(kind === 0 ? repeat : unique(`load ${n}`)),
                  headers: kind === 2 ? { "idempotency-key": unique("idem").replace(" ", "-") } : {},
                });
          counts[at].total++;
          counts[at].slowestMs = Math.max(counts[at].slowestMs, Date.now() - sentAt);
          if (answer.headers.get("x-cache") === "hit") counts[at].hits++;
          const recordId = answer.status === 201 ? answer.body.id : answer.headers.get("x-record-id");
          if (answer.status >= 200 && answer.status <= 299 && recordId) answered201.push(recordId);
          if (answer.status < 200 || answer.status > 299) {
            counts[at].failed++;
            failures.push(`${at}: ${answer.status} ${answer.text.slice(0, 200)}`);
          }
        } catch (error) {
          counts[at].total++;
          counts[at].failed++;
          failures.push(`${at}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    const stopLoad = async () => {
      running = false;
      await load;
    };
    cleanup(stopLoad);

    // The load runs a while with Redis up before it goes: a span of time, not a wait for something to happen.
    await delay(1_500);
    phase = "down";
    await redis.stop();
    const downAt = Date.now();
    let readyWhileDown: Answer | undefined;
    await pollUntil(
      async () => {
        readyWhileDown = await service.call("GET", "/ready");
        return readyWhileDown.status === 503;
      },
      5_000,
      () => `/ready stayed ${readyWhileDown?.status} after Redis was killed: ${readyWhileDown?.text}`,
    );
    const readyDownMs = Date.now() - downAt;
    assert.equal(readyWhileDown!.body.status, "unavailable");
    assert.notEqual(readyWhileDown!.body.checks.redis, "ok", "the redis check is named as failing");
    assert.equal(readyWhileDown!.body.checks.database, "ok", "the database is not blamed");
    // What else a client does meanwhile: a wrong key is still a 401 (failed attempts are counted in Redis), the
    // caller's own view and list still answer.
    const probes: string[] = [];
    const probe = async (what: string, expected: number, answer: Promise<Answer>) => {
      const got = await answer;
      if (got.status !== expected) probes.push(`${what}: ${got.status} ${got.text.slice(0, 200)}`);
    };
    await probe("a wrong key", 401, call(service.url, "GET", "/requests", { key: `arh_${"x".repeat(40)}` }));
    await probe("GET /me", 200, call(service.url, "GET", "/me", { key: user.key }));
    await probe("GET /requests", 200, call(service.url, "GET", "/requests", { key: user.key }));
    // Keep the load on while Redis is away, long enough for several reconnection attempts.
    await delay(2_500);

    await redis.start();
    phase = "after";
    const upAt = Date.now();
    await pollUntil(
      async () => (await service.call("GET", "/ready")).status === 200,
      10_000,
      () => "/ready did not come back to 200 within 10 s of Redis restarting",
      100,
    );
    const readyAgainMs = Date.now() - upAt;

    // The restarted Redis is empty: the first call of a fresh input fills it, a repeat is a hit once it is back.
    const fresh = unique("after restart");
    let lastCache: string | null = null;
    await pollUntil(
      async () => {
        const answer = await call(service.url, "POST", "/requests", { key: user.key, body: summarize(fresh) });
        assert.equal(answer.status, 201, answer.text);
        lastCache = answer.headers.get("x-cache");
        return lastCache === "hit";
      },
      10_000,
      () => `a repeat was still x-cache: ${lastCache} 10 s after Redis came back`,
      100,
    );
    const cacheAgainMs = Date.now() - upAt;
    // And a while longer with Redis back: again a span of time.
    await delay(1_000);
    await stopLoad();

    t.diagnostic(
      `answers before/down/after: ${counts.before.total}/${counts.down.total}/${counts.after.total}, ` +
        `non-2xx ${counts.before.failed}/${counts.down.failed}/${counts.after.failed}, ` +
        `hits (coalesced included) ${counts.before.hits}/${counts.down.hits}/${counts.after.hits}, ` +
        `slowest ${counts.before.slowestMs}/${counts.down.slowestMs}/${counts.after.slowestMs} ms`,
    );
    const warnings = new Map<string, number>();
    for (const line of service.logs) {
      if (line.level === "warn" || line.level === "error") {
        warnings.set(String(line.msg), (warnings.get(String(line.msg)) ?? 0) + 1);
      }
    }
    t.diagnostic(`log lines while Redis was away: ${JSON.stringify(Object.fromEntries(warnings))}`);
    t.diagnostic(
      `/ready 503 ${readyDownMs} ms after the kill; 200 again ${readyAgainMs} ms after the restart; ` +
        `cache hits again ${cacheAgainMs} ms after the restart`,
    );
    assert.deepEqual(failures, [], "no request failed because of Redis");
    assert.deepEqual(probes, [], "other calls while Redis is away answer as usual");
    assert.ok(counts.down.total >= 10, `the load kept running while Redis was away (${counts.down.total} answers)`);
    // Requests do not stall on a Redis that is not there (ioredis fails commands at once, no offline queue).
    assert.ok(counts.down.slowestMs < 3_000, `slowest answer while Redis was away: ${counts.down.slowestMs} ms`);

    // Every answered request is recorded.
    const stored = await storedIds(database.url, answered201);
    assert.equal(stored.size, answered201.length, "every 201 of the load is stored");
  });

  test("Redis unreachable when the service starts: it serves without it, and picks it up once it answers", {
    timeout: 30_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const redis = await startThrowawayRedis();
    cleanup(() => redis.close());
    await redis.stop();
    const database = await createTestPostgres();
    cleanup(() => database.close());
    const service = await startTestService({ databaseUrl: database.url, env: { REDIS_URL: redis.url } });
    cleanup(() => service.close());
    const user = await service.createUser();

    const ready = await service.call("GET", "/ready");
    assert.equal(ready.status, 503, ready.text);
    assert.notEqual(ready.body.checks.redis, "ok");
    const input = unique("no redis yet");
    for (let i = 0; i < 3; i++) {
      const answer = await service.call("POST", "/requests", { key: user.key, body: summarize(input) });
      assert.equal(answer.status, 201, answer.text);
      assert.equal(answer.headers.get("x-cache"), "miss", "no cache to answer from");
    }

    await redis.start();
    const upAt = Date.now();
    await pollUntil(
      async () => (await service.call("GET", "/ready")).status === 200,
      10_000,
      () => "/ready did not become 200 within 10 s of Redis starting",
      100,
    );
    const readyMs = Date.now() - upAt;
    let lastCache: string | null = null;
    await pollUntil(
      async () => {
        const answer = await service.call("POST", "/requests", { key: user.key, body: summarize(input) });
        assert.equal(answer.status, 201, answer.text);
        lastCache = answer.headers.get("x-cache");
        return lastCache === "hit";
      },
      10_000,
      () => `still x-cache: ${lastCache} 10 s after Redis started`,
      100,
    );
    t.diagnostic(`/ready 200 ${readyMs} ms and cache hits ${Date.now() - upAt} ms after Redis started`);
  });

  test("Redis frozen (up, but answering nothing): requests are answered without it, within seconds", {
    timeout: 60_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const redis = await startThrowawayRedis();
    cleanup(() => redis.close());
    const database = await createTestPostgres();
    cleanup(() => database.close());
    const service = await startTestService({ databaseUrl: database.url, env: { REDIS_URL: redis.url } });
    cleanup(() => service.close());
    const user = await service.createUser();
    const repeat = unique("frozen repeat");
    assert.equal((await service.call("POST", "/requests", { key: user.key, body: summarize(repeat) })).status, 201);

    redis.freeze();
    cleanup(async () => redis.thaw());
    const frozenAt = Date.now();
    const ready = await service.call("GET", "/ready");
    const readyMs = Date.now() - frozenAt;
    // All at once (a stall shows in every one of them, and the test waits for it once): a repeat the cache holds,
    // unique inputs, an OpenAI-style call. The client gives up after 6 s; the bar is 5 s.
    const timings: string[] = [];
    const wrong: string[] = [];
    const timed = async (what: string, answer: () => Promise<Answer>) => {
      const startedAt = Date.now();
      try {
        const got = await answer();
        const ms = Date.now() - startedAt;
        timings.push(`${what} ${got.status} ${ms} ms`);
        if (got.status < 200 || got.status > 299 || ms > 5_000) wrong.push(`${what}: ${got.status} after ${ms} ms`);
      } catch (error) {
        wrong.push(
          `${what}: ${error instanceof Error ? error.message : String(error)} after ${Date.now() - startedAt} ms`,
        );
      }
    };
    const post = (body: unknown) => () =>
      call(service.url, "POST", "/requests", { key: user.key, body, timeoutMs: 6_000 });
    await Promise.all([
      timed("repeat", post(summarize(repeat))),
      ...[0, 1, 2, 3].map((i) => timed(`unique ${i}`, post(summarize(unique(`frozen ${i}`))))),
      timed("openai", () =>
        call(service.url, "POST", "/v1/chat/completions", {
          key: user.key,
          body: { model: "gpt-4o-mini", messages: [{ role: "user", content: unique("frozen chat") }] },
          timeoutMs: 6_000,
        }),
      ),
    ]);
    redis.thaw();
    t.diagnostic(`/ready ${ready.status} after ${readyMs} ms; ${timings.join("; ")}`);
    assert.equal(ready.status, 503, `/ready while Redis is frozen: ${ready.text}`);
    assert.notEqual(ready.body.checks.redis, "ok");
    assert.deepEqual(wrong, [], "every request is answered 2xx within 5 s while Redis is frozen");
  });

  test("PostgreSQL stopped: /ready 503, requests refused with 503 and Retry-After (never 500, never an unrecorded 201), recovery without a restart", {
    timeout: 60_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const postgres = await startThrowawayPostgres();
    cleanup(() => postgres.close());
    const service = await startTestService({ databaseUrl: postgres.url, redis: false });
    cleanup(() => service.close());
    const user = await service.createUser();
    // A second user whose key has never been used: verifying it needs the database.
    const unseen = await service.createUser();

    const answered201: string[] = [];
    const post = async (body: unknown, key = user.key) => {
      const answer = await call(service.url, "POST", "/requests", { key, body });
      if (answer.status === 201) answered201.push(answer.body.id);
      return answer;
    };
    const cachedInput = unique("cached before the outage");
    for (let i = 0; i < 5; i++) assert.equal((await post(summarize(unique("before")))).status, 201);
    assert.equal((await post(summarize(cachedInput))).status, 201);
    const storedBefore = (await service.call("GET", "/requests?limit=1", { key: user.key })).body.data[0].id;
    assert.equal((await service.call("GET", "/ready")).status, 200);

    await postgres.stop();
    const downAt = Date.now();

    const ready = await service.call("GET", "/ready");
    assert.equal(ready.status, 503, ready.text);
    assert.notEqual(ready.body.checks.database, "ok", "the database check is named as failing");

    // Plain requests, a burst of them at once, and a repeat the cache could answer: none may be answered without
    // a record, and none is an internal error.
    const during: Answer[] = [];
    for (let i = 0; i < 3; i++) during.push(await post(summarize(unique("during"), false)));
    during.push(...(await Promise.all(Array.from({ length: 10 }, () => post(summarize(unique("burst"), false))))));
    const cachedRepeat = await post(summarize(cachedInput));
    during.push(cachedRepeat);
    // Every answer during the outage is checked, and every wrong one listed, before the test fails on them.
    const wrong: string[] = [];
    const expect503 = (what: string, answer: Answer) => {
      if (answer.status !== 503) wrong.push(`${what}: ${answer.status} ${answer.text.slice(0, 300)}`);
      else if (!/^\d+$/.test(answer.headers.get("retry-after") ?? "")) wrong.push(`${what}: 503 without Retry-After`);
      else if (!/application\/problem\+json/.test(answer.headers.get("content-type") ?? "")) {
        wrong.push(`${what}: 503 that is not a problem document`);
      }
    };
    during.forEach((answer, i) => {
      expect503(answer === cachedRepeat ? "POST /requests (a cache hit)" : `POST /requests #${i}`, answer);
    });
    expect503("GET /requests", await service.call("GET", "/requests", { key: user.key }));
    expect503("GET /requests/{id}", await service.call("GET", `/requests/${storedBefore}`, { key: user.key }));
    expect503(
      "POST /requests with a key not verified before the outage",
      await post(summarize(unique("unseen key"), false), unseen.key),
    );

    await postgres.start();
    const upAt = Date.now();
    const recovery: number[] = [];
    await pollUntil(
      async () => {
        const answer = await post(summarize(unique("recovery"), false));
        recovery.push(answer.status);
        assert.ok([201, 503].includes(answer.status), `while PostgreSQL comes back: ${answer.status} ${answer.text}`);
        return answer.status === 201;
      },
      15_000,
      () => `requests did not succeed again within 15 s of PostgreSQL restarting (${recovery.join(",")})`,
      100,
    );
    const recoveredMs = Date.now() - upAt;
    assert.equal((await service.call("GET", "/ready")).status, 200);
    assert.equal((await service.call("GET", "/requests", { key: user.key })).status, 200);
    assert.equal((await post(summarize(cachedInput))).status, 201);
    assert.equal((await post(summarize(unique("unseen after")), unseen.key)).status, 201);

    const stored = await storedIds(postgres.url, answered201);
    const missing = answered201.filter((id) => !stored.has(id));
    t.diagnostic(
      `down ${upAt - downAt} ms; ${during.length} requests during the outage, statuses ` +
        `${[...new Set(during.map((a) => a.status))].join(",")}; recovered ${recoveredMs} ms after PostgreSQL ` +
        `restarted (${recovery.length} tries); ${answered201.length} answered 201, ${missing.length} missing`,
    );
    assert.deepEqual(missing, [], "every request answered 201 is stored");
    assert.deepEqual(wrong, [], "every answer while PostgreSQL is down is a 503 with Retry-After");
  });
});

describe("process lifecycle", () => {
  let upstream: MockUpstream;
  before(async () => {
    upstream = await startMockUpstream({ port: 0, apiKey: upstreamKey });
  });
  after(() => upstream.close());

  const serviceEnv = (databaseUrl: string, admin: string) => ({
    DATABASE_URL: databaseUrl,
    ADMIN_API_KEY: admin,
    OPENAI_API_KEY: upstreamKey,
    OPENAI_BASE_URL: upstream.url,
    UPSTREAM_MAX_RETRIES: "0",
  });

  test("SIGTERM with 50 requests in flight: all 50 answered 201 and stored, new connections refused, exit 0", {
    timeout: 60_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const database: TestPostgres = await createTestPostgres();
    cleanup(() => database.close());
    const admin = adminKey();
    const service: ServiceProcess = await startServiceProcess({ env: serviceEnv(database.url, admin) });
    cleanup(() => service.kill());
    await service.waitUntilReady();
    const user = await createUser(service.url, admin);

    upstream.resetStats();
    upstream.setFaults({ latencyMs: 1_500 });
    cleanup(async () => upstream.resetFaults());
    const inFlight = Array.from({ length: 50 }, (_, i) =>
      call(service.url, "POST", "/requests", {
        key: user.key,
        body: summarize(unique(`in flight ${i}`), false),
        timeoutMs: 30_000,
      }).catch((error: unknown) => error),
    );
    await pollUntil(
      async () => upstream.stats().inFlight >= 50,
      10_000,
      () => `only ${upstream.stats().inFlight} of 50 requests reached the upstream`,
      20,
    );

    const signalledAt = Date.now();
    service.signal("SIGTERM");

    // A new connection must not start new work: refused once the listener is closed, or 503 until then.
    let newConnection = "";
    await pollUntil(
      async () => {
        newConnection = await freshConnectionStatus(`${service.url}/health`);
        return newConnection === "refused" || newConnection === "503";
      },
      1_000,
      () => `a new connection 1 s after SIGTERM was still answered: ${newConnection}`,
      20,
    );
    const refusedAfterMs = Date.now() - signalledAt;
    const stillInFlight = upstream.stats().inFlight;

    const answers = await Promise.all(inFlight);
    const answeredMs = Date.now() - signalledAt;
    const exit = await exitWithin(service, 30_000);
    const exitMs = Date.now() - signalledAt;
    const statuses = answers.map((answer) =>
      answer instanceof Error ? answer.message : String((answer as Answer).status),
    );
    const ids = answers.flatMap((answer) =>
      !(answer instanceof Error) && (answer as Answer).status === 201 ? [(answer as Answer).body.id as string] : [],
    );
    const stored = await storedIds(database.url, ids);

    t.diagnostic(
      `new connection ${newConnection} ${refusedAfterMs} ms after SIGTERM (${stillInFlight} still at the upstream); ` +
        `all answered ${answeredMs} ms after, exit ${exit?.code ?? "none"} after ${exitMs} ms; ` +
        `${ids.length} answered 201, ${stored.size} stored`,
    );
    assert.deepEqual(
      statuses.filter((status) => status !== "201"),
      [],
      `every request in flight is answered 201:\n${service.tail()}`,
    );
    assert.ok(stillInFlight > 0, "the new connection was turned away while requests were still in flight");
    assert.deepEqual(exit, { code: 0, signal: null }, `the service exits 0 after SIGTERM:\n${service.tail()}`);
    assert.ok(
      exitMs - answeredMs < 5_000,
      `the service exits soon after the last answer, not at the end of the grace period (${exitMs - answeredMs} ms)`,
    );
    assert.equal(stored.size, 50, "all 50 are stored");
  });

  test("SIGTERM while Redis has been down since the start: the service still exits 0, promptly", {
    timeout: 60_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    // Redis never answers this service: each of its Redis clients is still waiting for a first connection (commands
    // queued for it, where a client has an offline queue) when the signal comes.
    const redis = await startThrowawayRedis();
    cleanup(() => redis.close());
    await redis.stop();
    const database = await createTestPostgres();
    cleanup(() => database.close());
    const admin = adminKey();
    const service = await startServiceProcess({ env: { ...serviceEnv(database.url, admin), REDIS_URL: redis.url } });
    cleanup(() => service.kill());
    const user = await createUser(service.url, admin);
    const answer = await call(service.url, "POST", "/requests", { key: user.key, body: summarize(unique("before")) });
    assert.equal(answer.status, 201, answer.text);
    assert.equal((await call(service.url, "GET", "/ready")).status, 503);

    const signalledAt = Date.now();
    service.signal("SIGTERM");
    const exit = await exitWithin(service, 15_000);
    const exitMs = Date.now() - signalledAt;
    t.diagnostic(`exit ${exit ? `code ${exit.code} signal ${exit.signal}` : "none"} after ${exitMs} ms`);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM with Redis down:\n${service.tail()}`);
    assert.ok(exitMs < 5_000, `took ${exitMs} ms`);
    const stored = await storedIds(database.url, [answer.body.id]);
    assert.equal(stored.size, 1, "the answered request is stored");
  });

  test("kill -9 right after a burst of answers: every request answered 201 is in the database after a restart", {
    timeout: 60_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const database = await createTestPostgres();
    cleanup(() => database.close());
    const admin = adminKey();
    const first = await startServiceProcess({ env: serviceEnv(database.url, admin) });
    cleanup(() => first.kill());
    await first.waitUntilReady();
    const user = await createUser(first.url, admin);

    // 200 requests, 20 at a time: mostly unique, some repeats answered from the cache (stored all the same).
    const total = 200;
    const concurrency = 20;
    const repeats = Array.from({ length: 5 }, (_, i) => unique(`burst repeat ${i}`));
    const ids: string[] = [];
    const others: string[] = [];
    let next = 0;
    const startedAt = Date.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const input = i % 5 === 0 ? repeats[(i / 5) % repeats.length]! : unique(`burst ${i}`);
          const answer = await call(first.url, "POST", "/requests", { key: user.key, body: summarize(input) });
          if (answer.status === 201) ids.push(answer.body.id);
          else others.push(`${answer.status} ${answer.text.slice(0, 200)}`);
        }
      }),
    );
    // The moment the last answer is in: no time for anything buffered to be written afterwards.
    first.signal("SIGKILL");
    const burstMs = Date.now() - startedAt;
    const killed = await exitWithin(first, 10_000);
    assert.equal(killed?.signal, "SIGKILL");
    assert.deepEqual(others, [], "the burst is answered 201 throughout");

    const second = await startServiceProcess({ env: serviceEnv(database.url, admin) });
    cleanup(() => second.kill());
    await second.waitUntilReady();
    const stored = await storedIds(database.url, ids);
    const missing = ids.filter((id) => !stored.has(id));
    // And through the API of the restarted service, for the last answers before the kill.
    for (const id of ids.slice(-5)) {
      const answer = await call(second.url, "GET", `/requests/${id}`, { key: user.key });
      assert.equal(answer.status, 200, `GET /requests/${id} after the restart: ${answer.status} ${answer.text}`);
    }
    t.diagnostic(
      `${ids.length} answered 201 in ${burstMs} ms (concurrency ${concurrency}); SIGKILL right after; ` +
        `${stored.size} stored after the restart, ${missing.length} missing`,
    );
    assert.equal(ids.length, total);
    assert.deepEqual(missing, [], "every request answered 201 survives kill -9");
  });
});

/**
 * What a brand-new TCP connection gets for `GET url`: "refused" (nobody listens), "reset" (accepted, then cut),
 * or the status code as a string.
 */
function freshConnectionStatus(url: string): Promise<string> {
  return new Promise((resolve) => {
    const pending = httpRequest(url, { agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(String(response.statusCode));
    });
    pending.on("timeout", () => pending.destroy(new Error("timeout")));
    pending.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") resolve("refused");
      else if (error.code === "ECONNRESET" || error.message === "socket hang up") resolve("reset");
      else resolve(error.message);
    });
    pending.end();
  });
}

describe("bounded shutdown", () => {
  test("a request the upstream never answers holds close() no longer than the grace period", {
    timeout: 30_000,
  }, async (t) => {
    const cleanup = cleanupStack(t);
    const database = await createTestPostgres();
    cleanup(() => database.close());
    const graceMs = 1_000;
    const service = await startTestService({ databaseUrl: database.url, redis: false, shutdownGraceMs: graceMs });
    cleanup(() => service.close());
    const user = await service.createUser();
    const upstream = service.upstream!;

    upstream.setFaults({ failNext: [{ hang: true }] });
    const hung = call(service.url, "POST", "/requests", {
      key: user.key,
      body: summarize(unique("never answered"), false),
      timeoutMs: 20_000,
    }).then(
      (answer) => `${answer.status}`,
      (error: unknown) => `error: ${error instanceof Error ? `${error.message} (${String(error.cause)})` : error}`,
    );
    await pollUntil(
      async () => upstream.stats().inFlight >= 1,
      5_000,
      () => "the request never reached the upstream",
    );

    const closingAt = Date.now();
    await service.running.close();
    const closeMs = Date.now() - closingAt;
    const outcome = await hung;
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const stored = await client
      .query<{ status: string; error: { code: string } | null }>("select status, error from requests")
      .finally(() => client.end());
    t.diagnostic(
      `close() took ${closeMs} ms with a grace of ${graceMs} ms; the cut client got: ${outcome}; ` +
        `stored: ${JSON.stringify(stored.rows)}`,
    );
    assert.ok(closeMs < graceMs + 3_000, `close() took ${closeMs} ms`);
    assert.equal(upstream.stats().inFlight, 0, "the upstream call is cancelled");
    assert.deepEqual(
      stored.rows.map((row) => row.status),
      ["cancelled"],
      "the cut request is recorded as cancelled, not lost",
    );
  });
});
