/**
 * Shutdown writes the record of every request it cut, or whose client left during the drain, before it closes the
 * writer. Regressions: a stream left the drain's bookkeeping once its headers were out, and a request whose client
 * left at once; their `cancelled` records reached the writer after it had closed (RequestWriterClosedError,
 * swallowed), so they were lost.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { createTestPostgres } from "./helpers/databases.ts";
import { pollUntil } from "./helpers/processes.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

/** Short, so the stream is still running when it ends. */
const graceMs = 300;
/** The mock upstream's pause before each chunk after the first: the stream lasts seconds. */
const chunkDelayMs = 1_000;

interface StreamApi {
  name: string;
  path: string;
  body(input: string): unknown;
  /** The text in the server-sent events received so far. */
  textOf(events: string): string;
}

const dataLines = (events: string) =>
  events
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice("data: ".length)) as Record<string, unknown>);

const apis: StreamApi[] = [
  {
    name: "native stream (POST /requests, stream: true)",
    path: "/requests",
    body: (input) => ({ type: "chat", input, stream: true }),
    textOf: (events) =>
      dataLines(events)
        .map((data) => (typeof data.delta === "string" ? data.delta : ""))
        .join(""),
  },
  {
    name: "OpenAI stream (POST /v1/chat/completions, stream: true)",
    path: "/v1/chat/completions",
    body: (input) => ({ model: "gpt-4o-mini", messages: [{ role: "user", content: input }], stream: true }),
    textOf: (events) =>
      dataLines(events)
        .map((data) => {
          const choices = data.choices as Array<{ delta?: { content?: string | null } }> | undefined;
          return choices?.[0]?.delta?.content ?? "";
        })
        .join(""),
  },
];

describe("shutdown cuts a stream: its request is recorded as cancelled", () => {
  let upstream: MockUpstream;
  before(async () => {
    upstream = await startMockUpstream({ port: 0, apiKey: "sk-test-upstream" });
  });
  after(() => upstream?.close());

  for (const api of apis) {
    test(`${api.name}: the cut stream's record is there after a restart`, { timeout: 60_000 }, async (t) => {
      const database = await createTestPostgres();
      const services: TestService[] = [];
      t.after(async () => {
        upstream.resetFaults();
        for (const service of services) await service.close().catch(() => {});
        await database.close();
      });
      const first = await startTestService({ databaseUrl: database.url, upstream, shutdownGraceMs: graceMs });
      services.push(first);
      const user = await first.createUser();
      upstream.setFaults({ streamChunkDelayMs: chunkDelayMs });

      const response = await fetch(first.url + api.path, {
        method: "POST",
        headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" },
        body: JSON.stringify(api.body(`a story cut short ${randomBytes(6).toString("hex")}`)),
      });
      if (!response.ok) assert.fail(`${response.status} ${await response.text()}`);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let events = "";
      // Until some text has arrived: the request is mid-stream, its output partial.
      while (api.textOf(events) === "") {
        const read = await reader.read();
        assert.ok(!read.done, `the stream ended before any text: ${events}`);
        events += decoder.decode(read.value, { stream: true });
      }
      const ending = (async () => {
        try {
          for (let read = await reader.read(); !read.done; read = await reader.read()) {
            events += decoder.decode(read.value, { stream: true });
          }
          return "ended";
        } catch {
          return "cut";
        }
      })();

      const closingAt = Date.now();
      await first.close();
      const closeMs = Date.now() - closingAt;
      assert.equal(await ending, "cut", `the stream was cut, not finished: ${events}`);
      const received = api.textOf(events);
      t.diagnostic(`close() took ${closeMs} ms (grace ${graceMs} ms); the client received ${JSON.stringify(received)}`);
      assert.ok(closeMs < graceMs + chunkDelayMs, `close() took ${closeMs} ms: it did not wait out the stream`);

      // A fresh start on the same database: the record was committed, not just handed to a writer.
      const second = await startTestService({ databaseUrl: database.url, upstream });
      services.push(second);
      const list = await second.call("GET", "/requests?status=cancelled", { key: user.key });
      assert.equal(list.status, 200, list.text);
      assert.equal(list.body.data.length, 1, `one cancelled request: ${list.text}`);
      const stored = await second.call("GET", `/requests/${list.body.data[0].id}`, { key: user.key });
      assert.equal(stored.status, 200, stored.text);
      const record = stored.body;
      assert.equal(record.status, "cancelled");
      assert.equal(record.type, "chat");
      assert.equal(record.error?.code, "client_closed");
      assert.ok(
        JSON.stringify(record.output).includes(JSON.stringify(received).slice(1, -1)),
        `the partial output is stored: ${JSON.stringify(record.output)} (the client had ${JSON.stringify(received)})`,
      );
      assert.ok(record.usage.prompt_tokens > 0, JSON.stringify(record.usage));
      assert.ok(record.usage.completion_tokens > 0, `the partial completion's tokens: ${JSON.stringify(record.usage)}`);
      const unstored = first.logs.filter((line) => line.msg === "could not store the request record");
      assert.deepEqual(unstored, [], "every record reached the writer while it was open");
    });
  }
});

describe("a client that leaves during the drain: its request is recorded as cancelled", () => {
  test("a plain request whose client gives up while the service drains", { timeout: 60_000 }, async (t) => {
    const upstream = await startMockUpstream({ port: 0, apiKey: "sk-test-upstream" });
    const database = await createTestPostgres();
    const services: TestService[] = [];
    t.after(async () => {
      for (const service of services) await service.close().catch(() => {});
      await upstream.close();
      await database.close();
    });
    // A grace period the test never reaches: nothing is cut by the service, the client leaves by itself.
    const first = await startTestService({ databaseUrl: database.url, upstream, shutdownGraceMs: 30_000 });
    services.push(first);
    const user = await first.createUser();
    const upstreamLatencyMs = 10_000;
    upstream.setFaults({ latencyMs: upstreamLatencyMs });

    const client = new AbortController();
    const answer = fetch(`${first.url}/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "summarize", input: `left early ${randomBytes(6).toString("hex")}`, cache: false }),
      signal: client.signal,
    }).then(
      (response) => `${response.status}`,
      (error: unknown) => (error instanceof Error ? error.name : String(error)),
    );
    await pollUntil(
      async () => upstream.stats().inFlight >= 1,
      10_000,
      () => "the request never reached the upstream",
      10,
    );

    const closingAt = Date.now();
    const closing = first.close();
    client.abort();
    await closing;
    const closeMs = Date.now() - closingAt;
    t.diagnostic(`close() took ${closeMs} ms; the client got ${await answer}`);
    assert.equal(await answer, "AbortError");
    assert.ok(closeMs < upstreamLatencyMs, `close() took ${closeMs} ms: the upstream call was not cancelled`);

    const second = await startTestService({ databaseUrl: database.url, upstream });
    services.push(second);
    const list = await second.call("GET", "/requests?status=cancelled", { key: user.key });
    assert.equal(list.status, 200, list.text);
    assert.equal(list.body.data.length, 1, `one cancelled request: ${list.text}\n${first.logText()}`);
    assert.equal(list.body.data[0].type, "summarize");
    assert.equal(list.body.data[0].error?.code, "client_closed");
    const unstored = first.logs.filter((line) => line.msg === "could not store the request record");
    assert.deepEqual(unstored, [], "every record reached the writer while it was open");
  });
});

describe("a cached answer replayed as a stream and stopped midway", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ backend: "postgres" });
  });
  after(() => service?.close());

  test("is recorded as cancelled, like a live stream its reader left", async () => {
    const user = await service.createUser();
    const body = {
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user" as const, content: `replay ${randomBytes(4).toString("hex")}` }],
    };
    // Fill the cache with a whole stream.
    const filled = await service.call("POST", "/v1/chat/completions", { key: user.key, body });
    assert.equal(filled.status, 200, filled.text);

    // The same request, read one chunk at a time through the pipeline itself, then dropped by its reader.
    const { requestService, users } = service.running.services;
    const caller = { user: (await users.get(user.id))!, key: null };
    const replay = await requestService.chatCompletionStream(caller, body, { cacheMode: "use" });
    assert.equal(replay.cache, "hit");
    assert.equal((await replay.chunks.next()).done, false);
    await replay.chunks.return(undefined as never);

    const list = await service.call("GET", "/requests?limit=10", { key: user.key });
    const statuses = (list.body.data as Array<{ status: string; cached: boolean; error: { code: string } | null }>).map(
      (item) => `${item.status}:${item.cached}:${item.error?.code ?? ""}`,
    );
    assert.deepEqual(statuses.sort(), ["cancelled:true:client_closed", "completed:false:"]);
  });
});
