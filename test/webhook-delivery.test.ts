// Webhook delivery against real HTTP receivers on 127.0.0.1 (started here, port 0): what arrives, how a receiver's
// failures come back, and that nothing reaches an address the guard refused. No test sends traffic anywhere else.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { type LookupAll, resolveWebhookTarget } from "../src/webhooks/address-guard.ts";
import { sendWebhook } from "../src/webhooks/send-webhook.ts";
import { newWebhookSecret, signatureHeaders } from "../src/webhooks/signing.ts";

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage["headers"];
  body: string;
}

interface Receiver {
  port: number;
  url: string;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Resolves with the next request received in full (or one already received and not yet taken). */
  nextRequest(): Promise<Received>;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A receiver whose `answer` runs once a request's body has arrived in full. */
async function startReceiver(answer: (res: ServerResponse, req: Received) => void): Promise<Receiver> {
  const queued: Received[] = [];
  const waiting: ((request: Received) => void)[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const received = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      const waiter = waiting.shift();
      if (waiter) waiter(received);
      else queued.push(received);
      answer(res, received);
    });
  });
  server.on("connection", () => {
    connections += 1;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    nextRequest: () => {
      const ready = queued.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

const body = JSON.stringify({ type: "request.completed", data: { id: "req_1", output: "héllo ✓" } });

const local = { timeoutMs: 5_000, maxResponseBytes: 4_096, allowPrivateNetworks: true } as const;

/** Received headers as the plain string record a receiver's verify() takes. */
function flatHeaders(headers: IncomingMessage["headers"]): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

describe("sendWebhook", () => {
  test("a 2xx delivery: headers and body arrive intact and verify with the receiver's library", async () => {
    const receiver = await startReceiver((res) => res.writeHead(200, { "content-type": "text/plain" }).end("thanks"));
    const secret = newWebhookSecret();
    const signed = signatureHeaders([secret], "msg_2xx", new Date(), body);

    const attempt = await sendWebhook({
      ...local,
      url: `${receiver.url}/hooks/in?source=arh`,
      headers: { ...signed, "user-agent": "arh-webhooks/test", "Content-Type": "text/plain" },
      body,
    });
    assert.deepEqual(
      { ok: attempt.ok, status: attempt.status, error: attempt.error, responseBody: attempt.responseBody },
      { ok: true, status: 200, error: null, responseBody: "thanks" },
    );
    const received = await receiver.nextRequest();
    assert.ok(attempt.durationMs >= 0 && attempt.durationMs < 5_000);
    assert.equal(received.method, "POST");
    assert.equal(received.url, "/hooks/in?source=arh");
    assert.equal(received.body, body);
    assert.equal(received.headers["content-type"], "application/json", "always JSON, whatever the caller passed");
    assert.equal(received.headers["user-agent"], "arh-webhooks/test");
    assert.equal(received.headers["webhook-id"], "msg_2xx");
    assert.equal(received.headers["webhook-timestamp"], signed["webhook-timestamp"]);
    assert.equal(received.headers["webhook-signature"], signed["webhook-signature"]);
    assert.deepEqual(new Webhook(secret).verify(received.body, flatHeaders(received.headers)), JSON.parse(body));
  });

  test("a 500 is a failed attempt with its status and body", async () => {
    const receiver = await startReceiver((res) => res.writeHead(500).end("boom"));
    const attempt = await sendWebhook({ ...local, url: `${receiver.url}/`, headers: {}, body });
    assert.equal(attempt.ok, false);
    assert.equal(attempt.status, 500);
    assert.equal(attempt.responseBody, "boom");
    assert.equal(attempt.error, "HTTP 500");
  });

  test("a 302 is not followed: failed, status kept, the redirect's target gets nothing", async () => {
    const elsewhere = await startReceiver((res) => res.writeHead(200).end());
    const receiver = await startReceiver((res) => res.writeHead(302, { location: `${elsewhere.url}/stolen` }).end());
    const attempt = await sendWebhook({ ...local, url: `${receiver.url}/`, headers: {}, body });
    assert.equal(attempt.ok, false);
    assert.equal(attempt.status, 302);
    assert.match(attempt.error ?? "", /redirects are not followed/);
    assert.equal(receiver.connections(), 1);
    assert.equal(elsewhere.connections(), 0);
  });

  test("a receiver that never answers: a timeout, returned within about timeoutMs", async () => {
    const receiver = await startReceiver(() => {}); // holds the request open, never answers
    const attempt = await sendWebhook({ ...local, timeoutMs: 300, url: `${receiver.url}/`, headers: {}, body });
    assert.equal(attempt.ok, false);
    assert.equal(attempt.status, null);
    assert.match(attempt.error ?? "", /^timeout after 300 ms waiting for the response/);
    assert.ok(attempt.durationMs < 3_000, `took ${attempt.durationMs} ms`);
    assert.equal(receiver.connections(), 1);
  });

  test("a body that stalls after a 2xx: the status stands, the timeout is noted, what arrived is kept", async () => {
    const receiver = await startReceiver((res) => {
      res.writeHead(200);
      res.write("partial");
    });
    const attempt = await sendWebhook({ ...local, timeoutMs: 300, url: `${receiver.url}/`, headers: {}, body });
    assert.equal(attempt.ok, true);
    assert.equal(attempt.status, 200);
    assert.match(attempt.error ?? "", /^timeout after 300 ms reading the response body/);
    assert.equal(attempt.responseBody, "partial");
  });

  test("an endless body: at most maxResponseBytes kept, then the connection is dropped", async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const chunk = Buffer.from("é".repeat(32_768)); // 64 KiB of two-byte characters
    const receiver = await startReceiver((res) => {
      res.on("close", closed);
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) {}
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    });
    // An odd cap cuts a character in two; the half is dropped rather than kept as a replacement character.
    const attempt = await sendWebhook({
      ...local,
      maxResponseBytes: 1_001,
      url: `${receiver.url}/`,
      headers: {},
      body,
    });
    await serverSawClose;
    assert.equal(attempt.ok, true);
    assert.equal(attempt.status, 200);
    assert.equal(attempt.error, null);
    assert.equal(attempt.responseBody, "é".repeat(500));
    assert.ok(Buffer.byteLength(attempt.responseBody) <= 1_001);
  });

  test("allowPrivateNetworks false: a loopback URL is refused and no connection is made", async () => {
    const receiver = await startReceiver((res) => res.writeHead(200).end());
    const attempt = await sendWebhook({
      ...local,
      allowPrivateNetworks: false,
      url: `${receiver.url}/`,
      headers: {},
      body,
    });
    assert.deepEqual(
      { ok: attempt.ok, status: attempt.status, error: attempt.error, responseBody: attempt.responseBody },
      { ok: false, status: null, error: "is a private or reserved address (127.0.0.1)", responseBody: "" },
    );
    assert.equal(receiver.connections(), 0);
  });

  test("DNS rebinding: public at registration, loopback at delivery: refused, no connection made", async () => {
    const receiver = await startReceiver((res) => res.writeHead(200).end());
    let lookups = 0;
    const lookup: LookupAll = async () => {
      lookups += 1;
      return [{ address: lookups === 1 ? "93.184.215.14" : "127.0.0.1", family: 4 }];
    };
    const url = `http://rebind.example.test:${receiver.port}/hook`;

    const registered = await resolveWebhookTarget(url, { allowPrivateNetworks: false, lookup });
    assert.deepEqual(registered.addresses, [{ address: "93.184.215.14", family: 4 }]);

    const attempt = await sendWebhook({ ...local, allowPrivateNetworks: false, lookup, url, headers: {}, body });
    assert.equal(lookups, 2, "resolved again at delivery");
    assert.equal(attempt.ok, false);
    assert.equal(attempt.status, null);
    assert.equal(attempt.error, "resolves to a private or reserved address (127.0.0.1)");
    assert.equal(receiver.connections(), 0);
  });

  test("pinning: the connection goes to the vetted address, the Host header keeps the URL's name", async () => {
    const receiver = await startReceiver((res) => res.writeHead(204).end());
    const asked: string[] = [];
    const lookup: LookupAll = async (hostname) => {
      asked.push(hostname);
      if (hostname !== "hooks.example.test") throw new Error(`unexpected lookup of ${hostname}`);
      return [{ address: "127.0.0.1", family: 4 }];
    };
    const attempt = await sendWebhook({
      ...local,
      lookup,
      url: `http://hooks.example.test:${receiver.port}/in`,
      headers: {},
      body,
    });
    assert.equal(attempt.ok, true, attempt.error ?? undefined);
    assert.equal(attempt.status, 204);
    const received = await receiver.nextRequest();
    assert.equal(received.headers.host, `hooks.example.test:${receiver.port}`);
    assert.equal(received.body, body);
    assert.deepEqual(asked, ["hooks.example.test"], "resolved once, by the guard; the socket asked no one else");
  });

  test("a refused connection is a failed attempt, not an exception", async () => {
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    const { port } = gone.address() as AddressInfo;
    await new Promise((resolve) => gone.close(resolve));
    const attempt = await sendWebhook({ ...local, url: `http://127.0.0.1:${port}/`, headers: {}, body });
    assert.equal(attempt.ok, false);
    assert.equal(attempt.status, null);
    assert.match(attempt.error ?? "", /ECONNREFUSED/);
  });

  test("a malformed URL is a failed attempt with the guard's reason", async () => {
    const attempt = await sendWebhook({ ...local, url: "ftp://example.com/", headers: {}, body });
    assert.deepEqual(
      { ok: attempt.ok, status: attempt.status, error: attempt.error },
      { ok: false, status: null, error: "must be an http or https URL" },
    );
  });
});
