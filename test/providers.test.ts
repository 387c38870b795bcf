/**
 * The providers: `createOpenAIProvider` against the mock upstream on a real socket (retries, Retry-After, timeouts,
 * streams, aborts reaching the upstream), and `createMockProvider`'s deterministic answers.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { AppError } from "../src/errors.ts";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import { createOpenAIProvider, type OpenAIProviderOptions } from "../src/providers/openai.ts";
import { parseRetryAfterMs } from "../src/providers/upstream-failure.ts";
import type { ChatCompletionChunk, ChatCompletionRequest, Provider, RetryEvent } from "../src/providers/provider.ts";
import { assertMatchesOpenAISchema } from "./helpers/openai-spec.ts";

const apiKey = "sk-provider-test-key-0123456789";
const body: ChatCompletionRequest = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: "What does a lighthouse do?" },
  ],
};

let mock: MockUpstream;
const providers: Provider[] = [];

function openai(overrides: Partial<OpenAIProviderOptions> = {}): Provider {
  const provider = createOpenAIProvider({
    baseUrl: mock.url,
    apiKey,
    timeoutMs: 2000,
    maxRetries: 2,
    backoffBaseMs: 5,
    ...overrides,
  });
  providers.push(provider);
  return provider;
}

const chatRequests = () => mock.stats().requests["POST /v1/chat/completions"] ?? 0;

async function waitFor(predicate: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Asserts an AppError with this code (and status), returning it for further checks. */
async function rejectsWith(promise: Promise<unknown>, code: AppError["code"], status: number): Promise<AppError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof AppError, `expected an AppError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, status);
  return caught;
}

before(async () => {
  mock = await startMockUpstream({ apiKey });
});

after(async () => {
  await Promise.all(providers.map((provider) => provider.close()));
  await mock.close();
});

beforeEach(() => {
  mock.resetFaults();
  mock.resetStats();
});

describe("createOpenAIProvider", () => {
  test("a chat completion: OpenAI's answer, no retries, time measured", async () => {
    const retries: RetryEvent[] = [];
    const outcome = await openai().chatCompletion(body, { onRetry: (retry) => retries.push(retry) });
    assertMatchesOpenAISchema("CreateChatCompletionResponse", outcome.value);
    assert.match(outcome.value.choices[0]?.message.content ?? "", /^Mock answer: /);
    assert.equal(retries.length, 0);
    assert.ok(outcome.upstreamMs > 0);
    assert.equal(chatRequests(), 1);
  });

  test("a finished call leaves no deadline timer behind (the total timeout is cleared, plain and streamed)", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    const provider = openai({ totalTimeoutMs: 600_000 });
    await provider.chatCompletion(body);
    for await (const _ of provider.chatCompletionStream(body)) {
      // drain
    }
    const before = timers();
    for (let i = 0; i < 20; i++) {
      await provider.chatCompletion(body);
      for await (const _ of provider.chatCompletionStream(body)) {
        // drain
      }
    }
    assert.equal(timers(), before, "40 calls with a 10-minute deadline left no timer running");
  });

  test("embeddings and models keep the base URL's /v1 path", async () => {
    const provider = openai();
    const embeddings = await provider.embeddings({ model: "text-embedding-3-small", input: ["a", "b"] });
    assertMatchesOpenAISchema("CreateEmbeddingResponse", embeddings.value);
    assert.equal(embeddings.value.data.length, 2);
    const models = await provider.listModels();
    assertMatchesOpenAISchema("ListModelsResponse", models);
    assert.ok(models.data.some((model) => model.id === "mock"));
  });

  test("500 then success: one retry", async () => {
    mock.setFaults({ failNext: [{ status: 500 }] });
    const retries: RetryEvent[] = [];
    await openai().chatCompletion(body, { onRetry: (retry) => retries.push(retry) });
    assert.equal(chatRequests(), 2);
    assert.equal(retries.length, 1);
    assert.equal(retries[0]?.attempt, 2);
    assert.equal(retries[0]?.reason, "500");
  });

  test("a connection dropped without an answer is retried", async () => {
    mock.setFaults({ failNext: [{ drop: true }] });
    const retries: RetryEvent[] = [];
    await openai().chatCompletion(body, { onRetry: (retry) => retries.push(retry) });
    assert.equal(retries.length, 1);
  });

  test("429 with Retry-After: 1 waits at least a second before the retry", async () => {
    mock.setFaults({ failNext: [{ status: 429, retryAfterSeconds: 1 }] });
    const retries: RetryEvent[] = [];
    const started = performance.now();
    await openai().chatCompletion(body, { onRetry: (retry) => retries.push(retry) });
    const elapsed = performance.now() - started;
    assert.equal(retries.length, 1);
    assert.ok(elapsed >= 990, `waited ${elapsed} ms`);
    assert.ok(elapsed < 2500, `waited ${elapsed} ms`);
    assert.equal(retries[0]?.delayMs, 1000);
  });

  test("retry-after-ms is preferred over Retry-After", async () => {
    mock.setFaults({ failNext: [{ status: 429, retryAfterMs: 40 }] });
    const retries: RetryEvent[] = [];
    const started = performance.now();
    await openai().chatCompletion(body, { onRetry: (retry) => retries.push(retry) });
    assert.equal(retries.length, 1);
    assert.ok(performance.now() - started < 900, "did not wait the rounded-up Retry-After: 1");
  });

  test("a Retry-After beyond the cap fails at once, passing the hint on", async () => {
    mock.setFaults({ failNext: [{ status: 429, retryAfterSeconds: 30 }] });
    const started = performance.now();
    const error = await rejectsWith(openai({ retryAfterCapMs: 5000 }).chatCompletion(body), "upstream_error", 502);
    assert.ok(performance.now() - started < 500);
    assert.equal(error.retryAfterSeconds, 30);
    assert.match(error.message, /429/);
    assert.equal(chatRequests(), 1);
  });

  test("400 is not retried and becomes invalid_request with the upstream's message and param", async () => {
    mock.setFaults({ failNext: [{ status: 400, message: "Invalid 'messages[0].role'.", param: "messages[0].role" }] });
    const error = await rejectsWith(openai().chatCompletion(body), "invalid_request", 400);
    assert.equal(error.message, "Invalid 'messages[0].role'.");
    assert.equal(error.param, "messages[0].role");
    assert.equal(chatRequests(), 1);
  });

  test("the upstream's own 400 (a missing model) comes through the same way", async () => {
    const error = await rejectsWith(openai().chatCompletion({ ...body, model: "" }), "invalid_request", 400);
    assert.equal(error.param, "model");
  });

  test("404 becomes not_found", async () => {
    mock.setFaults({ failNext: [{ status: 404, message: "The model 'x' does not exist", param: "model" }] });
    const error = await rejectsWith(openai().chatCompletion(body), "not_found", 404);
    assert.match(error.message, /does not exist/);
    assert.equal(chatRequests(), 1);
  });

  test("401 from the upstream is the service's problem: 502, never the key", async () => {
    const error = await rejectsWith(
      openai({ apiKey: "sk-the-wrong-secret-key" }).chatCompletion(body),
      "upstream_error",
      502,
    );
    assert.match(error.message, /refused the service's credentials/);
    assert.ok(!error.message.includes("sk-the-wrong-secret-key"));
    assert.equal(chatRequests(), 1);
  });

  test("retries exhausted: 502 naming the status and the attempts", async () => {
    mock.setFaults({ failNext: [{ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 }] });
    const retries: RetryEvent[] = [];
    const error = await rejectsWith(
      openai({ maxRetries: 2 }).chatCompletion(body, { onRetry: (retry) => retries.push(retry) }),
      "upstream_error",
      502,
    );
    assert.match(error.message, /^upstream answered 503 after 3 attempts: The engine is currently overloaded/);
    assert.equal(chatRequests(), 3);
    assert.equal(retries.length, 2);
  });

  test("an unreachable upstream: 502 after the retries", async () => {
    const closed = await startMockUpstream();
    const url = closed.url;
    await closed.close();
    const error = await rejectsWith(
      openai({ baseUrl: url, maxRetries: 1 }).chatCompletion(body),
      "upstream_error",
      502,
    );
    assert.match(error.message, /could not reach the upstream after 2 attempts: ECONNREFUSED/);
  });

  test("a hung upstream: 504 after roughly timeoutMs", async () => {
    mock.setFaults({ hang: true });
    const started = performance.now();
    const error = await rejectsWith(
      openai({ timeoutMs: 300, maxRetries: 0 }).chatCompletion(body),
      "upstream_timeout",
      504,
    );
    const elapsed = performance.now() - started;
    // undici's headers/body timers tick every ~0.5 s (its "fast timers"), so a 300 ms timeout fires within ~1.3 s.
    assert.ok(elapsed >= 290 && elapsed < 2000, `gave up after ${elapsed} ms`);
    assert.match(error.message, /300 ms/);
  });

  test("a timeout is retried: a hang once, then an answer", async () => {
    mock.setFaults({ failNext: [{ hang: true }] });
    const retries: RetryEvent[] = [];
    const outcome = await openai({ timeoutMs: 200, maxRetries: 1 }).chatCompletion(body, {
      onRetry: (retry) => retries.push(retry),
    });
    assert.equal(retries.length, 1);
    assert.ok(outcome.upstreamMs >= 190);
  });

  test("streaming yields OpenAI's chunks, the usage chunk last, and asks for usage itself", async () => {
    const provider = openai();
    const chunks = await collect(provider.chatCompletionStream(body));
    for (const chunk of chunks) assertMatchesOpenAISchema("CreateChatCompletionStreamResponse", chunk);
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.ok(last?.usage && last.usage.total_tokens > 0, "usage chunk (the provider asked for include_usage)");
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    const plain = await provider.chatCompletion(body);
    assert.equal(text, plain.value.choices[0]?.message.content);
    assert.deepEqual(last?.usage, plain.value.usage);
  });

  test("streaming keeps the caller's stream_options", async () => {
    const chunks = await collect(
      openai().chatCompletionStream({ ...body, stream_options: { include_usage: false, include_obfuscation: false } }),
    );
    assert.ok(chunks.at(-1)?.usage, "include_usage is forced on");
  });

  test("a stream failing before its first chunk is retried", async () => {
    mock.setFaults({ failNext: [{ status: 500 }, { brokenStreamAfterChunks: 0 }] });
    const retries: RetryEvent[] = [];
    const chunks = await collect(openai().chatCompletionStream(body, { onRetry: (retry) => retries.push(retry) }));
    assert.ok(chunks.length > 3);
    assert.deepEqual(
      retries.map((retry) => retry.reason),
      ["500", "connection"],
    );
    assert.equal(chatRequests(), 3);
  });

  test("a stream broken after some chunks fails with upstream_error, without a retry", async () => {
    mock.setFaults({ failNext: [{ brokenStreamAfterChunks: 3 }] });
    const received: ChatCompletionChunk[] = [];
    await rejectsWith(
      (async () => {
        for await (const chunk of openai().chatCompletionStream(body)) received.push(chunk);
      })(),
      "upstream_error",
      502,
    );
    assert.equal(received.length, 3);
    assert.equal(chatRequests(), 1);
  });

  test("an error event in the stream fails with upstream_error", async () => {
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end('data: {"error":{"message":"overloaded mid-stream","type":"server_error","param":null,"code":null}}\n\n');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const error = await rejectsWith(
        collect(openai({ baseUrl: `http://127.0.0.1:${port}/v1` }).chatCompletionStream(body)),
        "upstream_error",
        502,
      );
      assert.match(error.message, /overloaded mid-stream/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("aborting mid-stream closes the upstream connection at once", async () => {
    mock.setFaults({ streamChunkDelayMs: 40 });
    const controller = new AbortController();
    const received: ChatCompletionChunk[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of openai().chatCompletionStream(body, { signal: controller.signal })) {
          received.push(chunk);
          if (received.length === 2) controller.abort();
        }
      })(),
      { name: "AbortError" },
    );
    assert.equal(received.length, 2);
    await waitFor(() => mock.stats().clientDisconnects === 1, 300);
  });

  test("a consumer leaving the loop early closes the upstream connection too", async () => {
    mock.setFaults({ streamChunkDelayMs: 40 });
    for await (const _chunk of openai().chatCompletionStream(body)) break;
    await waitFor(() => mock.stats().clientDisconnects === 1, 300);
  });

  test("aborting a hung plain call rejects at once and the upstream sees the disconnect", async () => {
    mock.setFaults({ hang: true });
    const controller = new AbortController();
    const pending = openai().chatCompletion(body, { signal: controller.signal });
    await waitFor(() => mock.stats().inFlight === 1);
    const reason = new Error("client went away");
    const started = performance.now();
    controller.abort(reason);
    await assert.rejects(pending, (error: unknown) => error === reason);
    assert.ok(performance.now() - started < 100);
    await waitFor(() => mock.stats().clientDisconnects === 1, 300);
    assert.equal(chatRequests(), 1, "an aborted call is not retried");
  });

  // A timeout below the 5 s Retry-After: a wait that ignores the abort is reported as this test's failure.
  test("aborting during a Retry-After wait rejects at once", { timeout: 3_000 }, async () => {
    mock.setFaults({ failNext: [{ status: 429, retryAfterSeconds: 5 }] });
    const controller = new AbortController();
    let retry: RetryEvent | undefined;
    let abortedAt = 0;
    // The provider tells of the retry just before it starts waiting: the abort comes on the next turn, in that wait.
    const onRetry = (event: RetryEvent) => {
      retry = event;
      setImmediate(() => {
        abortedAt = performance.now();
        controller.abort();
      });
    };
    await assert.rejects(openai().chatCompletion(body, { signal: controller.signal, onRetry }), { name: "AbortError" });
    assert.equal(retry?.delayMs, 5_000, "the abort came in the wait the upstream's Retry-After asked for");
    assert.ok(performance.now() - abortedAt < 500);
    assert.equal(chatRequests(), 1);
  });

  test("parseRetryAfterMs reads retry-after-ms, seconds and HTTP dates", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    assert.equal(parseRetryAfterMs({ "retry-after-ms": "120.5", "retry-after": "9" }, now), 120.5);
    assert.equal(parseRetryAfterMs({ "retry-after": "2" }, now), 2000);
    assert.equal(parseRetryAfterMs({ "retry-after": "Wed, 01 Jan 2025 00:00:03 GMT" }, now), 3000);
    assert.equal(parseRetryAfterMs({ "retry-after": "Tue, 31 Dec 2024 23:59:00 GMT" }, now), 0);
    assert.equal(parseRetryAfterMs({ "retry-after": "soon" }, now), undefined);
    assert.equal(parseRetryAfterMs({}, now), undefined);
  });
});

describe("createMockProvider", () => {
  const provider = createMockProvider();

  test("is deterministic: same input, same output; different input, different output", async () => {
    const first = await provider.chatCompletion(body);
    const second = await provider.chatCompletion(body);
    assertMatchesOpenAISchema("CreateChatCompletionResponse", first.value);
    assert.equal(provider.name, "mock");
    assert.equal(first.value.choices[0]?.message.content, second.value.choices[0]?.message.content);
    assert.deepEqual(first.value.usage, second.value.usage);
    const other = await provider.chatCompletion({ ...body, messages: [{ role: "user", content: "Another question" }] });
    assert.notEqual(other.value.choices[0]?.message.content, first.value.choices[0]?.message.content);
  });

  test("classify-style structured output answers one of the enum's values", async () => {
    const labels = ["billing", "bug", "feature", "other"];
    const seen = new Set<string>();
    for (const text of ["My invoice is wrong", "The app crashes", "Please add dark mode", "Hello"]) {
      const outcome = await provider.chatCompletion({
        model: "gpt-4o-mini",
        messages: [
          { role: "system", content: "Classify the text." },
          { role: "user", content: text },
        ],
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "classification",
            strict: true,
            schema: {
              type: "object",
              properties: { label: { type: "string", enum: labels } },
              required: ["label"],
              additionalProperties: false,
            },
          },
        },
      });
      const output = JSON.parse(outcome.value.choices[0]?.message.content ?? "") as { label: string };
      assert.ok(labels.includes(output.label), output.label);
      seen.add(output.label);
    }
    assert.ok(seen.size >= 1);
  });

  test("streams chunks ending with the usage chunk, even when not asked", async () => {
    const chunks = await collect(provider.chatCompletionStream(body));
    for (const chunk of chunks) assertMatchesOpenAISchema("CreateChatCompletionStreamResponse", chunk);
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.ok(chunks.at(-1)?.usage);
  });

  test("embeddings, models, bad input and aborts", async () => {
    const embeddings = await provider.embeddings({ model: "text-embedding-3-large", input: "hi", dimensions: 64 });
    assert.equal((embeddings.value.data[0]?.embedding as number[] | undefined)?.length, 64);
    assert.ok((await provider.listModels()).data.some((model) => model.id === "gpt-4o-mini"));
    await rejectsWith(provider.chatCompletion({ ...body, messages: [] }), "invalid_request", 400);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(provider.chatCompletion(body, { signal: controller.signal }), { name: "AbortError" });
  });
});
