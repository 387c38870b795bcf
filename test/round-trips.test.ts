/**
 * What the service asks Redis before an upstream call: one script (admit, look up, lock, reserve), however many
 * limits the caller has. Watched with MONITOR on a Redis of the test's own: everything a client sends shows there in
 * the order Redis runs it, so a marker the test sends when the upstream is reached splits "before the call" from
 * "after". Commands a script runs inside Redis (source "lua") are not round trips and are left out.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { startTestService, type TestService } from "./helpers/service.ts";
import { pollUntil } from "./helpers/processes.ts";
import { startThrowawayRedis, type ThrowawayRedis } from "./helpers/throwaway-redis.ts";

describe("Redis round trips before the upstream call", () => {
  let server: ThrowawayRedis;
  let upstream: MockUpstream;
  let service: TestService;
  let observer: Redis;
  let monitored: Redis;
  let monitor: Redis;
  let key: string;
  /** Commands clients sent, in the order Redis ran them; markers as `mark:<name>`. */
  const seen: string[] = [];

  before(async () => {
    server = await startThrowawayRedis();
    // Never retried: if this Redis goes away, the test fails instead of a client reconnecting to it for ever.
    observer = new Redis(server.url, { retryStrategy: () => null });
    observer.on("error", () => {});
    // Connected (its ready check done) before MONITOR starts: a command of another client that lands while the
    // monitor connection is switching modes is read as a reply to it ("Command queue state error").
    await observer.ping();
    // monitor() opens a connection of its own; this client only lends it its options and never connects.
    monitored = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null });
    monitor = await monitored.monitor();
    monitor.on("error", () => {});
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (source === "lua") return;
      const [command = "", first] = args;
      seen.push(command.toLowerCase() === "echo" ? `mark:${first}` : command.toLowerCase());
    });
    // The marker goes out when the upstream is reached: Redis runs it after whatever the service awaited before.
    upstream = await startMockUpstream({
      port: 0,
      apiKey: "sk-test-upstream",
      onChatRequest: () => void observer.echo("upstream"),
    });
    service = await startTestService({ upstream, redis: false, env: { REDIS_URL: server.url } });
    const user = await service.call("POST", "/admin/users", {
      key: service.adminKey,
      body: {
        email: `round-trips-${Date.now()}@example.com`,
        limits: { rpm: 10_000, tpm: 10_000_000, monthly_budget_usd: 100 },
      },
    });
    assert.equal(user.status, 201, user.text);
    const created = await service.call("POST", `/admin/users/${user.body.id}/keys`, {
      key: service.adminKey,
      body: { limits: { rpm: 10_000, tpm: 10_000_000 } },
    });
    assert.equal(created.status, 201, created.text);
    key = created.body.key;
    // Warm: scripts loaded (a first EVALSHA meets NOSCRIPT and is sent again as EVAL), the budget counter seeded,
    // the key verified and cached.
    await send({ type: "summarize", input: "warming up" });
    await send({ type: "summarize", input: "warming up again" });
  });
  after(async () => {
    try {
      await service?.close();
      await upstream?.close();
    } finally {
      monitor?.disconnect();
      monitored?.disconnect();
      observer?.disconnect();
      await server?.close();
    }
  });

  const send = (body: unknown) => service.call("POST", "/requests", { key, body });

  /** The service's commands between two markers (background refreshes of shared ratios left out). */
  async function commandsBetween(start: string, end: string): Promise<string[]> {
    const from = () => seen.lastIndexOf(`mark:${start}`);
    await pollUntil(
      () => from() >= 0 && seen.indexOf(`mark:${end}`, from()) >= 0,
      5_000,
      () => `markers ${start} … ${end} not seen: ${seen.join(" ")}`,
    );
    const to = seen.indexOf(`mark:${end}`, from());
    return seen.slice(from() + 1, to).filter((command) => command !== "hgetall");
  }

  test("a cache miss: one script before the call, whatever its user's limits; settle, fill and release after", async () => {
    await observer.echo("miss-start");
    const answer = await send({ type: "summarize", input: `one round trip ${Date.now()}` });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.body.cached, false);
    await observer.echo("miss-end");
    const before = await commandsBetween("miss-start", "upstream");
    assert.deepEqual(before, ["evalsha"], "admission, lookup, lock and reservation in one script");
    const afterCall = await commandsBetween("upstream", "miss-end");
    assert.deepEqual(
      afterCall.sort(),
      ["eval", "evalsha", "set"],
      "the settlement, the cache fill and the lock's release",
    );
  });

  test("a cache hit: one script in all, and nothing held to give back", async () => {
    const body = { type: "summarize", input: `a repeat ${Date.now()}` };
    assert.equal((await send(body)).status, 201);
    await observer.echo("hit-start");
    const answer = await send(body);
    assert.equal(answer.body.cached, true);
    await observer.echo("hit-end");
    assert.deepEqual(await commandsBetween("hit-start", "hit-end"), ["evalsha"]);
  });
});
