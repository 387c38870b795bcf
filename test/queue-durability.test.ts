import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { Webhook } from "standardwebhooks";
import { startMockUpstream, type MockUpstream } from "../src/mock-upstream/server.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { type ServiceProcess, startServiceProcess } from "./helpers/service-process.ts";
import { startThrowawayRedis, type ThrowawayRedis } from "./helpers/throwaway-redis.ts";

/**
 * Queued requests survive the death of every instance (SIGKILL, mid-call) and a Redis restart: every one runs to
 * completion, is stored once and billed once. Real processes on PostgreSQL, a Redis of the test's own.
 */
describe("queued requests through kill -9 and a Redis restart (PostgreSQL + Redis)", () => {
  let database: TestPostgres;
  let redis: ThrowawayRedis;
  let upstream: MockUpstream;
  const adminKey = "admin-key-for-the-queue-durability-test";
  const services: ServiceProcess[] = [];
  let receiver: Server;
  /** Every delivery the receiver got: its message id, the request it is about, and whether its signature holds. */
  const delivered: Array<{ messageId: string; requestId: string; body: string; headers: Record<string, string> }> = [];

  const start = async () => {
    const service = await startServiceProcess({
      env: {
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        OPENAI_API_KEY: "sk-durability",
        OPENAI_BASE_URL: upstream.url,
        ADMIN_API_KEY: adminKey,
        QUEUE_CONCURRENCY: "4",
        // A running request whose worker died is taken up again after this long.
        QUEUE_VISIBILITY_TIMEOUT_SECONDS: "3",
        QUEUE_POLL_INTERVAL_MS: "500",
        // The webhook receiver is this test, on loopback.
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true",
        WEBHOOK_TIMEOUT_MS: "2000",
        WEBHOOK_RETRY_DELAY_SECONDS: "1",
      },
    });
    services.push(service);
    await service.waitUntilReady();
    return service;
  };

  const call = async (service: ServiceProcess, method: string, path: string, key: string, sent?: unknown) => {
    const answer = await fetch(`${service.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(sent !== undefined && { "content-type": "application/json" }) },
      body: sent === undefined ? undefined : JSON.stringify(sent),
    });
    type Counts = { completed: number; running: number; queued: number };
    const body = (await answer.json()) as Record<string, unknown> & { counts: Counts };
    return { status: answer.status, body };
  };

  before(async () => {
    database = await createTestPostgres();
    redis = await startThrowawayRedis();
    // Slow enough that requests are mid-call when the instances die.
    upstream = await startMockUpstream({ port: 0, apiKey: "sk-durability", latencyMs: 400 });
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      request.on("end", () => {
        const headers = request.headers as Record<string, string>;
        const requestId = (JSON.parse(body) as { data: { id: string } }).data.id;
        delivered.push({ messageId: headers["webhook-id"] ?? "", requestId, body, headers });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    for (const service of services) await service.kill();
    await upstream?.close();
    await new Promise((resolve) => receiver?.close(resolve));
    await redis?.close();
    await database?.close();
  });

  test("every queued request completes once after two instances are killed mid-run and Redis restarts", async () => {
    const [first, second] = [await start(), await start()];
    const user = await call(first, "POST", "/admin/users", adminKey, { email: `durable-${Date.now()}@example.com` });
    const key = String((await call(first, "POST", `/admin/users/${user.body.id}/keys`, adminKey, {})).body.key);
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const webhook = await call(first, "POST", "/me/webhooks", key, { url: hookUrl });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));

    const size = 60;
    const entries = Array.from({ length: size }, (_, i) => ({ type: "summarize", input: `durable request ${i}` }));
    const accepted = await call(first, "POST", "/requests/batch", key, { requests: entries });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const batchPath = `/batches/${accepted.body.id}`;

    // Kill both instances while some requests are done and others are mid-call.
    for (;;) {
      const { counts } = (await call(first, "GET", batchPath, key)).body;
      if (counts.completed >= 4 && counts.running > 0) break;
      await delay(20);
    }
    first.signal("SIGKILL");
    second.signal("SIGKILL");
    await Promise.all([first.exited, second.exited]);
    const upstreamCallsAtKill = upstream.stats().requests["POST /v1/chat/completions"] ?? 0;

    // Redis loses everything it held (cache, limits, locks) while nobody runs.
    await redis.stop();
    await redis.start();

    const third = await start();
    const deadline = Date.now() + 60_000;
    let batch = (await call(third, "GET", batchPath, key)).body;
    let restartedRedis = false;
    while (batch.status !== "completed") {
      assert.ok(Date.now() < deadline, `the batch is still ${String(batch.status)}: ${JSON.stringify(batch.counts)}`);
      if (!restartedRedis && batch.counts.completed >= size / 2) {
        // Redis restarts again while the queue is being worked.
        restartedRedis = true;
        await redis.stop();
        await redis.start();
      }
      await delay(100);
      batch = (await call(third, "GET", batchPath, key)).body;
    }
    assert.ok(restartedRedis, "Redis restarted while requests ran");
    assert.equal(batch.counts.completed, size, JSON.stringify(batch.counts));

    // Stored once each, billed once each: the usage sums exactly the batch's records.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const rows = await client.query("select id, status, cost_usd, total_tokens from requests where batch_id = $1", [
        accepted.body.id,
      ]);
      assert.equal(rows.rows.length, size);
      assert.ok(rows.rows.every((row) => row.status === "completed" && Number(row.total_tokens) > 0));
      const cost = rows.rows.reduce((sum, row) => sum + Number(row.cost_usd), 0);
      const usage = await call(third, "GET", "/me/usage", key);
      const totals = usage.body.totals as { requests: number; cost_usd: number };
      assert.equal(totals.requests, size, "the usage counts each request once");
      assert.ok(Math.abs(totals.cost_usd - cost) < 1e-9, `usage cost ${totals.cost_usd} vs records ${cost}`);
      const overview = await call(third, "GET", "/me/overview", key);
      assert.equal((overview.body.totals as { requests: number }).requests, size, "the overview counts each once");
      // Jobs cut short by a kill are taken up again once they expire, find their work done (or redo a delivery,
      // as the same message) and complete: in the end none is left waiting, running or failed.
      const jobsDeadline = Date.now() + 30_000;
      for (;;) {
        const jobs = await client.query("select name, state, count(*)::int as n from pgboss.job group by name, state");
        const left = jobs.rows.filter((row) => row.state !== "completed").map((r) => `${r.name} ${r.state}: ${r.n}`);
        if (left.length === 0) break;
        assert.ok(Date.now() < jobsDeadline, `jobs left: ${left.join(", ")}`);
        assert.ok(!left.some((line) => line.includes("failed")), `no job fails: ${left.join(", ")}`);
        await delay(250);
      }
    } finally {
      await client.end();
    }
    // Every request's completion reached the webhook, signed, however the kills fell between finishing and sending.
    const hookDeadline = Date.now() + 30_000;
    while (new Set(delivered.map((d) => d.requestId)).size < size) {
      assert.ok(Date.now() < hookDeadline, `${new Set(delivered.map((d) => d.requestId)).size} of ${size} delivered`);
      await delay(100);
    }
    const verifier = new Webhook(String(webhook.body.secret));
    for (const delivery of delivered) verifier.verify(delivery.body, delivery.headers);
    const messagesPerRequest = new Map<string, Set<string>>();
    for (const delivery of delivered) {
      const ids = messagesPerRequest.get(delivery.requestId) ?? new Set<string>();
      ids.add(delivery.messageId);
      messagesPerRequest.set(delivery.requestId, ids);
    }
    // A delivery cut short by a kill may arrive twice, always as the same message (receivers dedupe on webhook-id).
    assert.ok(
      [...messagesPerRequest.values()].every((ids) => ids.size === 1),
      "one message per request",
    );

    const calls = upstream.stats().requests["POST /v1/chat/completions"] ?? 0;
    // Those cut short by the kill were called again (the upstream may bill those twice; the user is billed once).
    assert.ok(calls >= size, `${calls} upstream calls for ${size} requests`);
    assert.ok(calls - upstreamCallsAtKill <= size, "the restarted instance ran only what was not stored");
  });
});
