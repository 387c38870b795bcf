import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { startTestService, type TestService } from "./helpers/service.ts";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on 127.0.0.1: answers each POST with the next status of `script` (then 200). */
async function startReceiver() {
  const received: Received[] = [];
  const waiters: Array<{ count: number; resolve(): void }> = [];
  let script: number[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.writeHead(script.shift() ?? 200, { "content-type": "text/plain" }).end("thanks");
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    answerWith(statuses: number[]) {
      script = [...statuses];
    },
    /** Resolves once `count` deliveries in all have arrived. */
    until(count: number) {
      return new Promise<void>((resolve) => {
        if (received.length >= count) resolve();
        else waiters.push({ count, resolve });
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("webhooks (PostgreSQL + Redis)", () => {
  let strict: TestService;
  let local: TestService;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  before(async () => {
    receiver = await startReceiver();
    // The default: URLs that lead to this machine or a private network are refused.
    strict = await startTestService({ backend: "postgres", redis: true });
    // A receiver on loopback needs the development switch; retries a second apart.
    local = await startTestService({
      backend: "postgres",
      redis: true,
      env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true", WEBHOOK_RETRY_DELAY_SECONDS: "1", QUEUE_POLL_INTERVAL_MS: "500" },
    });
  });
  after(async () => {
    await strict?.close();
    await local?.close();
    await receiver?.close();
  });

  test("a URL that leads to loopback, a private network or the metadata address is refused with 422 naming url", async () => {
    const user = await strict.createUser();
    const refused = [
      "http://127.0.0.1:8080/hook",
      "http://localhost:9/hook",
      "http://10.1.2.3/hook",
      "http://192.168.0.10/hook",
      "http://100.64.0.1/hook",
      "http://169.254.169.254/latest/meta-data/",
      "http://[::1]/hook",
      "http://[::ffff:127.0.0.1]/hook",
      "http://[fd00:ec2::254]/hook",
      "http://2130706433/hook",
      "ftp://example.com/hook",
      "http://user:pass@example.com/hook",
    ];
    for (const url of refused) {
      const answer = await strict.call("POST", "/me/webhooks", { key: user.key, body: { url } });
      assert.equal(answer.status, 422, `${url}: ${answer.text}`);
      assert.equal(answer.body.errors[0].path, "url", url);
    }
    const listed = await strict.call("GET", "/me/webhooks", { key: user.key });
    assert.deepEqual(listed.body.data, [], "nothing was registered");
  });

  test("deliveries are signed, retried after failures with one message id, listed with every attempt, and redelivered", async () => {
    const user = await local.createUser();
    const created = await local.call("POST", "/me/webhooks", { key: user.key, body: { url: receiver.url } });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.secret, /^whsec_/);
    assert.equal(created.headers.get("cache-control"), "no-store");
    assert.deepEqual(created.body.events, ["request.completed", "request.failed"]);
    const listed = await local.call("GET", "/me/webhooks", { key: user.key });
    assert.equal(listed.body.data.length, 1);
    assert.equal(listed.body.data[0].secret, undefined, "the secret is shown once");
    const other = await local.createUser();
    const theirs = await local.call("GET", `/me/webhooks/${created.body.id}/deliveries`, { key: other.key });
    assert.equal(theirs.status, 404, "another user's webhook is not found");

    const start = receiver.received.length;
    receiver.answerWith([500, 503]);
    const accepted = await local.call("POST", "/requests", {
      key: user.key,
      body: { type: "summarize", input: `webhook me ${Date.now()}` },
      headers: { prefer: "respond-async" },
    });
    assert.equal(accepted.status, 202, accepted.text);
    await receiver.until(start + 3);
    const attempts = receiver.received.slice(start, start + 3);
    const messageIds = new Set(attempts.map((attempt) => attempt.headers["webhook-id"]));
    assert.equal(messageIds.size, 1, "every attempt carries the same message id");
    const last = attempts[2] as Received;
    // The receiver's side: the standardwebhooks library verifies the signature with the secret.
    const verified = new Webhook(created.body.secret).verify(last.body, last.headers as Record<string, string>) as {
      type: string;
      data: { id: string; status: string; output: unknown };
    };
    assert.equal(verified.type, "request.completed");
    assert.equal(verified.data.id, accepted.body.id);
    assert.equal(verified.data.status, "completed");
    assert.equal(typeof verified.data.output, "string");
    assert.throws(() =>
      new Webhook(created.body.secret).verify(`${last.body} `, last.headers as Record<string, string>),
    );

    const deliveries = async () =>
      (await local.call("GET", `/me/webhooks/${created.body.id}/deliveries`, { key: user.key })).body.data;
    let [delivery] = await deliveries();
    for (let tries = 0; delivery.status !== "delivered" && tries < 100; tries++) {
      // The attempt's row is written right after the receiver answers.
      await new Promise((resolve) => setImmediate(resolve));
      [delivery] = await deliveries();
    }
    assert.equal(delivery.status, "delivered");
    assert.equal(delivery.id, last.headers["webhook-id"]);
    assert.deepEqual(
      delivery.attempts.map((attempt: { status_code: number }) => attempt.status_code),
      [500, 503, 200],
    );
    assert.equal(delivery.attempts[0].response_body, "thanks");

    const again = await local.call("POST", `/me/webhooks/${created.body.id}/deliveries/${delivery.id}/redeliver`, {
      key: user.key,
    });
    assert.equal(again.status, 202, again.text);
    await receiver.until(start + 4);
    const redelivered = receiver.received[start + 3] as Received;
    assert.equal(redelivered.headers["webhook-id"], delivery.id);
    assert.equal(redelivered.body, last.body, "the same payload");
    new Webhook(created.body.secret).verify(redelivered.body, redelivered.headers as Record<string, string>);

    // Deliveries by result in the metrics: the two failed attempts, then the deliveries.
    const metrics = (await local.call("GET", "/metrics", { key: local.adminKey })).text;
    const count = (result: string) =>
      Number(new RegExp(`^arh_webhook_deliveries_total\\{result="${result}"\\} (\\d+)$`, "m").exec(metrics)?.[1] ?? 0);
    assert.ok(count("retrying") >= 2, metrics);
    assert.ok(count("delivered") >= 1, metrics);
  });

  test("after a rotation, deliveries verify with the new secret and, for a day, the old one", async () => {
    const user = await local.createUser();
    const created = await local.call("POST", "/me/webhooks", {
      key: user.key,
      body: { url: receiver.url, events: ["request.failed"] },
    });
    const rotated = await local.call("POST", `/me/webhooks/${created.body.id}/rotate-secret`, { key: user.key });
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.body.secret, created.body.secret);
    assert.ok(Date.parse(rotated.body.previous_secret_expires_at) > Date.now() + 23 * 3_600_000);

    // Subscribed to request.failed only: a failed request is delivered.
    const start = receiver.received.length;
    local.upstream?.setFaults({ failNext: [{ status: 400 }] });
    const failing = await local.call("POST", "/requests", {
      key: user.key,
      body: { type: "chat", input: `fails ${Date.now()}`, cache: false },
      headers: { prefer: "respond-async" },
    });
    assert.equal(failing.status, 202);
    await receiver.until(start + 1);
    const delivered = receiver.received[start] as Received;
    const headers = delivered.headers as Record<string, string>;
    const payload = new Webhook(rotated.body.secret).verify(delivered.body, headers) as { type: string };
    assert.equal(payload.type, "request.failed");
    new Webhook(created.body.secret).verify(delivered.body, headers);
  });
});
