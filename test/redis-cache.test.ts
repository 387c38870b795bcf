/**
 * The Redis response cache when Redis misbehaves: gone, frozen, back again. Against a redis-server of the test's
 * own, never the shared one.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { createRedisCache } from "../src/cache/redis-cache.ts";
import { pollUntil } from "./helpers/processes.ts";
import { startThrowawayRedis, type ThrowawayRedis } from "./helpers/throwaway-redis.ts";

describe("redis cache outages", () => {
  let server: ThrowawayRedis;
  let redis: Redis;

  before(async () => {
    server = await startThrowawayRedis();
    // The service's own client settings (services.ts): fail fast while disconnected, reconnect on its own.
    redis = new Redis(server.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    redis.on("error", () => {});
    await pollUntil(
      async () => redis.status === "ready",
      5_000,
      () => `redis client is ${redis.status}`,
    );
  });
  after(async () => {
    redis.disconnect();
    await server.close();
  });

  test("a frozen Redis costs a miss after the timeout, not a hung request; it answers again once thawed", async () => {
    const reports: unknown[] = [];
    const cache = createRedisCache(redis, (error) => reports.push(error), { timeoutMs: 200 });
    await cache.set("frozen", "value", 60);
    assert.equal(await cache.get("frozen"), "value");

    server.freeze();
    try {
      const startedAt = Date.now();
      assert.equal(await cache.get("frozen"), undefined);
      await cache.set("other", "value", 60);
      const elapsedMs = Date.now() - startedAt;
      assert.ok(elapsedMs < 1_000, `two commands against a frozen Redis took ${elapsedMs} ms`);
      assert.equal(reports.length, 1, "the failures are reported, once");
      assert.match(String(reports[0]), /did not answer within 200 ms/);
    } finally {
      server.thaw();
    }
    await pollUntil(
      async () => (await cache.get("frozen")) === "value",
      5_000,
      () => "still a miss after the thaw",
    );
  });

  test("Redis killed: misses at once, reported once per interval with the count; hits again after a restart", async () => {
    const reports: Array<{ error: unknown; unreported: number }> = [];
    let clock = 0;
    const cache = createRedisCache(redis, (error, unreported) => reports.push({ error, unreported }), {
      reportEveryMs: 10_000,
      now: () => clock,
    });
    await cache.set("killed", "value", 60);

    await server.stop();
    const startedAt = Date.now();
    for (let i = 0; i < 50; i++) assert.equal(await cache.get("killed"), undefined);
    assert.ok(Date.now() - startedAt < 2_000, `50 lookups against a dead Redis took ${Date.now() - startedAt} ms`);
    assert.equal(reports.length, 1, "one report for a burst of failures");
    clock += 10_000;
    assert.equal(await cache.get("killed"), undefined);
    assert.equal(reports.length, 2);
    assert.equal(reports[1]?.unreported, 49, "the next report counts the failures left unreported");

    await server.start();
    // The restarted server is empty: a fill, then a hit, once the client has reconnected.
    await pollUntil(
      async () => {
        await cache.set("killed", "again", 60);
        return (await cache.get("killed")) === "again";
      },
      10_000,
      () => `no hit 10 s after the restart (client ${redis.status})`,
      100,
    );
    // A success ends the outage: the next failure is reported at once, whatever the clock says.
    const before = reports.length;
    await server.stop();
    assert.equal(await cache.get("killed"), undefined);
    assert.equal(reports.length, before + 1);
    await server.start();
  });
});
