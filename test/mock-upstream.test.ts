/**
 * The mock OpenAI upstream over a real socket: its answers validated against OpenAI's own OpenAPI document, the
 * official `openai` client working against it, and every fault knob doing what it says.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import OpenAI from "openai";
import { parseMockUpstreamArgs } from "../src/mock-upstream/main.ts";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { assertMatchesOpenAISchema } from "./helpers/openai-spec.ts";

const apiKey = "sk-mock-test-key";
const chatBody = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Explain the lighthouse keeper's routine" },
  ],
};

let mock: MockUpstream;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: () => unknown;
}

async function call(
  path: string,
  init: { method?: string; body?: unknown; key?: string | null; signal?: AbortSignal } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const key = init.key === undefined ? apiKey : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const response = await fetch(`${mock.url}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
    signal: init.signal,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** The `data:` payloads of an SSE body, `[DONE]` included. */
function sseEvents(text: string): string[] {
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}

async function waitFor(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface ChatAnswer {
  model: string;
  choices: Array<{
    index: number;
    finish_reason: string;
    message: { content: string | null; tool_calls?: Array<{ function: { name: string; arguments: string } }> };
  }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

interface ChunkAnswer {
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string | null; tool_calls?: Array<{ function?: { arguments?: string } }> };
    finish_reason: string | null;
  }>;
  usage?: ChatAnswer["usage"] | null;
}

before(async () => {
  mock = await startMockUpstream({ apiKey });
});

after(async () => {
  await mock.close();
});

beforeEach(() => {
  mock.resetFaults();
  mock.resetStats();
});

describe("chat completions", () => {
  test("answers OpenAI's CreateChatCompletionResponse, deterministically, with counted usage", async () => {
    const first = await call("/chat/completions", { body: chatBody });
    assert.equal(first.status, 200);
    assert.match(first.headers.get("content-type") ?? "", /application\/json/);
    const answer = first.json() as ChatAnswer;
    assertMatchesOpenAISchema("CreateChatCompletionResponse", answer);
    assert.equal(answer.model, "gpt-4o-mini");
    assert.match(answer.choices[0]?.message.content ?? "", /^Mock answer: /);
    assert.equal(answer.choices[0]?.finish_reason, "stop");
    assert.ok(answer.usage.prompt_tokens > 10 && answer.usage.completion_tokens > 5);
    assert.equal(answer.usage.total_tokens, answer.usage.prompt_tokens + answer.usage.completion_tokens);

    const again = (await call("/chat/completions", { body: chatBody })).json() as ChatAnswer;
    assert.equal(again.choices[0]?.message.content, answer.choices[0]?.message.content);
    const other = (await call("/chat/completions", {
      body: { ...chatBody, messages: [{ role: "user", content: "Something else entirely" }] },
    }).then((a) => a.json())) as ChatAnswer;
    assert.notEqual(other.choices[0]?.message.content, answer.choices[0]?.message.content);
  });

  test("max_tokens truncates the answer with finish_reason length; n gives n choices", async () => {
    const short = (await call("/chat/completions", { body: { ...chatBody, max_tokens: 3 } })).json() as ChatAnswer;
    assertMatchesOpenAISchema("CreateChatCompletionResponse", short);
    assert.equal(short.choices[0]?.finish_reason, "length");
    assert.equal(short.usage.completion_tokens, 3);

    const many = (await call("/chat/completions", { body: { ...chatBody, n: 3 } })).json() as ChatAnswer;
    assertMatchesOpenAISchema("CreateChatCompletionResponse", many);
    assert.deepEqual(
      many.choices.map((choice) => choice.index),
      [0, 1, 2],
    );
  });

  test("streams OpenAI's chunks: role first, content, finish reason, usage, then [DONE]", async () => {
    const plain = (await call("/chat/completions", { body: chatBody })).json() as ChatAnswer;
    const answer = await call("/chat/completions", {
      body: { ...chatBody, stream: true, stream_options: { include_usage: true } },
    });
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get("content-type") ?? "", /text\/event-stream/);
    const events = sseEvents(answer.text);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as ChunkAnswer);
    for (const chunk of chunks) assertMatchesOpenAISchema("CreateChatCompletionStreamResponse", chunk);
    assert.ok(chunks.length >= 5, "several chunks");
    assert.equal(chunks[0]?.choices[0]?.delta.role, "assistant");
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk?.choices, []);
    assert.deepEqual(usageChunk?.usage, plain.usage);
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, "stop");
    const content = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    assert.equal(content, plain.choices[0]?.message.content);
    assert.equal(mock.stats().streams, 1);
  });

  test("without include_usage the stream has no usage chunk", async () => {
    const answer = await call("/chat/completions", { body: { ...chatBody, stream: true } });
    const chunks = sseEvents(answer.text)
      .slice(0, -1)
      .map((event) => JSON.parse(event) as ChunkAnswer);
    assert.ok(chunks.every((chunk) => chunk.choices.length === 1 && chunk.usage === undefined));
  });

  test("structured output satisfies the requested JSON schema; enums pick one value", async () => {
    const schema = {
      type: "object",
      properties: {
        label: { type: "string", enum: ["positive", "negative", "neutral"] },
        confidence: { type: "number", minimum: 0, maximum: 1 },
        count: { type: "integer", minimum: 1, maximum: 5 },
        flagged: { type: "boolean" },
        kind: { const: "review" },
        tags: { type: "array", items: { type: "string" }, minItems: 2 },
        author: {
          type: "object",
          properties: { name: { type: "string" }, email: { type: "string", format: "email" } },
          required: ["name", "email"],
          additionalProperties: false,
        },
        note: { anyOf: [{ type: "string" }, { type: "null" }] },
        ref: { $ref: "#/$defs/ref" },
      },
      required: ["label", "confidence", "count", "flagged", "kind", "tags", "author", "note", "ref"],
      additionalProperties: false,
      $defs: { ref: { type: "object", properties: { id: { type: "string" } }, required: ["id"] } },
    };
    const answer = (
      await call("/chat/completions", {
        body: {
          ...chatBody,
          response_format: { type: "json_schema", json_schema: { name: "review", strict: true, schema } },
        },
      })
    ).json() as ChatAnswer;
    assertMatchesOpenAISchema("CreateChatCompletionResponse", answer);
    const output: unknown = JSON.parse(answer.choices[0]?.message.content ?? "");
    const validate = new Ajv2020({ strict: false }).compile(schema);
    assert.ok(validate(output), JSON.stringify(validate.errors));

    const jsonObject = (
      await call("/chat/completions", { body: { ...chatBody, response_format: { type: "json_object" } } })
    ).json() as ChatAnswer;
    const parsed: unknown = JSON.parse(jsonObject.choices[0]?.message.content ?? "");
    assert.equal(typeof parsed, "object");
  });

  test("a required or named tool gets a tool call whose arguments satisfy its parameters", async () => {
    const parameters = {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    };
    const tools = [
      { type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } },
      { type: "function", function: { name: "get_weather", parameters } },
    ];
    const named = (
      await call("/chat/completions", {
        body: { ...chatBody, tools, tool_choice: { type: "function", function: { name: "get_weather" } } },
      })
    ).json() as ChatAnswer;
    assertMatchesOpenAISchema("CreateChatCompletionResponse", named);
    const choice = named.choices[0];
    assert.equal(choice?.finish_reason, "tool_calls");
    assert.equal(choice?.message.content, null);
    const toolCall = choice?.message.tool_calls?.[0];
    assert.equal(toolCall?.function.name, "get_weather");
    const validate = new Ajv2020({ strict: false }).compile(parameters);
    assert.ok(validate(JSON.parse(toolCall?.function.arguments ?? "")), JSON.stringify(validate.errors));

    const required = (
      await call("/chat/completions", { body: { ...chatBody, tools, tool_choice: "required" } })
    ).json() as ChatAnswer;
    assert.equal(required.choices[0]?.message.tool_calls?.[0]?.function.name, "lookup");

    const auto = (await call("/chat/completions", { body: { ...chatBody, tools } })).json() as ChatAnswer;
    assert.equal(auto.choices[0]?.finish_reason, "stop");

    const streamed = await call("/chat/completions", {
      body: { ...chatBody, tools, tool_choice: "required", stream: true },
    });
    const chunks = sseEvents(streamed.text)
      .slice(0, -1)
      .map((event) => JSON.parse(event) as ChunkAnswer);
    for (const chunk of chunks) assertMatchesOpenAISchema("CreateChatCompletionStreamResponse", chunk);
    const args = chunks.map((chunk) => chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "").join("");
    assert.deepEqual(JSON.parse(args), {});
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, "tool_calls");
  });
});

describe("embeddings and models", () => {
  test("embeddings: OpenAI's shape, unit vectors, model-sized, deterministic", async () => {
    const answer = await call("/embeddings", { body: { model: "text-embedding-3-small", input: ["hello", "world"] } });
    assert.equal(answer.status, 200);
    const body = answer.json() as {
      data: Array<{ index: number; embedding: number[] }>;
      usage: { prompt_tokens: number; total_tokens: number };
    };
    assertMatchesOpenAISchema("CreateEmbeddingResponse", body);
    assert.equal(body.data.length, 2);
    assert.equal(body.data[0]?.embedding.length, 1536);
    const norm = Math.hypot(...(body.data[0]?.embedding ?? []));
    assert.ok(Math.abs(norm - 1) < 1e-9);
    assert.notDeepEqual(body.data[0]?.embedding, body.data[1]?.embedding);
    assert.equal(body.usage.prompt_tokens, 2);

    const single = (
      await call("/embeddings", { body: { model: "text-embedding-3-small", input: "hello" } })
    ).json() as typeof body;
    assert.deepEqual(single.data[0]?.embedding, body.data[0]?.embedding);

    const large = (
      await call("/embeddings", { body: { model: "text-embedding-3-large", input: "hello" } })
    ).json() as typeof body;
    assert.equal(large.data[0]?.embedding.length, 3072);
    const small = (
      await call("/embeddings", { body: { model: "text-embedding-3-large", input: [[15339, 1917]], dimensions: 256 } })
    ).json() as typeof body;
    assertMatchesOpenAISchema("CreateEmbeddingResponse", small);
    assert.equal(small.data[0]?.embedding.length, 256);
    assert.equal(small.usage.prompt_tokens, 2);
  });

  test("embeddings with encoding_format base64 are little-endian float32s", async () => {
    const floats = (await call("/embeddings", { body: { model: "m", input: "hi", dimensions: 8 } })).json() as {
      data: Array<{ embedding: number[] }>;
    };
    const encoded = (
      await call("/embeddings", { body: { model: "m", input: "hi", dimensions: 8, encoding_format: "base64" } })
    ).json() as { data: Array<{ embedding: string }> };
    const bytes = Buffer.from(encoded.data[0]?.embedding ?? "", "base64");
    const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    assert.equal(decoded.length, 8);
    for (const [i, value] of decoded.entries()) assert.ok(Math.abs(value - (floats.data[0]?.embedding[i] ?? 0)) < 1e-6);
  });

  test("models: OpenAI's ListModelsResponse with the expected ids", async () => {
    const answer = await call("/models");
    assert.equal(answer.status, 200);
    const body = answer.json() as { data: Array<{ id: string }> };
    assertMatchesOpenAISchema("ListModelsResponse", body);
    const ids = body.data.map((model) => model.id);
    for (const id of [
      "gpt-4o-mini",
      "gpt-4o",
      "gpt-4.1-mini",
      "text-embedding-3-small",
      "text-embedding-3-large",
      "mock",
    ]) {
      assert.ok(ids.includes(id), id);
    }
    assert.equal(mock.stats().requests["GET /v1/models"], 1);
  });
});

describe("errors in OpenAI's shape", () => {
  const cases: Array<[string, Parameters<typeof call>, number, string | null]> = [
    ["no key", ["/chat/completions", { body: chatBody, key: null }], 401, null],
    ["wrong key", ["/chat/completions", { body: chatBody, key: "sk-wrong" }], 401, null],
    ["malformed JSON", ["/chat/completions", { body: "{not json" }], 400, null],
    ["missing model", ["/chat/completions", { body: { messages: chatBody.messages } }], 400, "model"],
    ["missing messages", ["/chat/completions", { body: { model: "gpt-4o-mini" } }], 400, "messages"],
    ["empty embedding input", ["/embeddings", { body: { model: "m", input: "" } }], 400, "input"],
    ["unknown route", ["/completions-nope", { body: {} }], 404, null],
    ["wrong method", ["/chat/completions", { method: "GET" }], 405, null],
  ];
  for (const [name, args, status, param] of cases) {
    test(`${name} → ${status}`, async () => {
      const answer = await call(...args);
      assert.equal(answer.status, status);
      const body = answer.json() as { error: { param: string | null; message: string } };
      assertMatchesOpenAISchema("ErrorResponse", body);
      assert.equal(body.error.param, param);
      assert.ok(!body.error.message.includes("sk-wrong"));
    });
  }
});

describe("the official openai client", () => {
  const client = () => new OpenAI({ apiKey, baseURL: mock.url, maxRetries: 0 });

  test("chat, stream, embeddings and models work unchanged", async () => {
    const openai = client();
    const completion = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello" }],
    });
    assert.match(completion.choices[0]?.message.content ?? "", /^Mock answer: /);

    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, completion.choices[0]?.message.content);
    assert.equal(usage?.total_tokens, completion.usage?.total_tokens);

    // The client asks for base64 by default and decodes it: the floats must come back intact.
    const embedding = await openai.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
    assert.equal(embedding.data[0]?.embedding.length, 1536);
    assert.ok(Math.abs(Math.hypot(...(embedding.data[0]?.embedding ?? [])) - 1) < 1e-5);

    const models = [];
    for await (const model of openai.models.list()) models.push(model.id);
    assert.ok(models.includes("gpt-4o-mini"));
  });

  test("structured output through the client satisfies the schema", async () => {
    const completion = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Classify: great product" }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "classification",
          strict: true,
          schema: {
            type: "object",
            properties: { label: { type: "string", enum: ["good", "bad"] } },
            required: ["label"],
            additionalProperties: false,
          },
        },
      },
    });
    const parsed = JSON.parse(completion.choices[0]?.message.content ?? "") as { label: string };
    assert.ok(["good", "bad"].includes(parsed.label));
  });

  test("the client raises its typed errors from the mock's error bodies", async () => {
    mock.setFaults({ failNext: [{ status: 429, retryAfterSeconds: 1 }] });
    await assert.rejects(
      client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }),
      (error: unknown) => error instanceof OpenAI.RateLimitError && error.status === 429,
    );
    await assert.rejects(
      new OpenAI({ apiKey: "sk-wrong", baseURL: mock.url, maxRetries: 0 }).models.list(),
      (error: unknown) => error instanceof OpenAI.AuthenticationError,
    );
  });
});

describe("faults", () => {
  test("failNext answers its statuses in order, then the mock answers normally", async () => {
    mock.setFaults({
      failNext: [{ status: 500 }, { status: 503 }, { status: 400, message: "bad field", param: "messages" }],
    });
    const first = await call("/chat/completions", { body: chatBody });
    assert.equal(first.status, 500);
    assertMatchesOpenAISchema("ErrorResponse", first.json());
    assert.equal((await call("/chat/completions", { body: chatBody })).status, 503);
    const third = await call("/chat/completions", { body: chatBody });
    assert.equal(third.status, 400);
    assert.deepEqual((third.json() as { error: unknown }).error, {
      message: "bad field",
      type: "invalid_request_error",
      param: "messages",
      code: null,
    });
    assert.equal((await call("/chat/completions", { body: chatBody })).status, 200);
    const stats = mock.stats();
    assert.equal(stats.requests["POST /v1/chat/completions"], 4);
    assert.equal(stats.injectedFaults, 3);
  });

  test("429 carries Retry-After (and retry-after-ms when given in ms)", async () => {
    mock.setFaults({
      failNext: [{ status: 429, retryAfterSeconds: 2 }, { status: 429, retryAfterMs: 250 }, { status: 429 }],
    });
    const seconds = await call("/chat/completions", { body: chatBody });
    assert.equal(seconds.status, 429);
    assert.equal(seconds.headers.get("retry-after"), "2");
    assertMatchesOpenAISchema("ErrorResponse", seconds.json());
    const milliseconds = await call("/chat/completions", { body: chatBody });
    assert.equal(milliseconds.headers.get("retry-after-ms"), "250");
    assert.equal(milliseconds.headers.get("retry-after"), "1");
    const fallback = await call("/chat/completions", { body: chatBody });
    assert.equal(fallback.headers.get("retry-after"), "1", "the retryAfterSeconds knob's default");
  });

  test("errorRate and rateLimitRate of 1 fail every request", async () => {
    mock.setFaults({ errorRate: 1 });
    assert.equal((await call("/embeddings", { body: { model: "m", input: "x" } })).status, 500);
    mock.setFaults({ errorRate: 0, rateLimitRate: 1, retryAfterSeconds: 3 });
    const limited = await call("/models");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "3");
  });

  test("latencyMs delays the answer", async () => {
    mock.setFaults({ latencyMs: 150 });
    const started = performance.now();
    assert.equal((await call("/models")).status, 200);
    assert.ok(performance.now() - started >= 145);
  });

  test("hang never answers; the client giving up is counted as a disconnect", async () => {
    mock.setFaults({ hang: true });
    await assert.rejects(call("/chat/completions", { body: chatBody, signal: AbortSignal.timeout(150) }));
    await waitFor(() => mock.stats().clientDisconnects === 1);
    assert.equal(mock.stats().inFlight, 0);
  });

  test("a broken stream sends N chunks, then cuts the connection without [DONE]", async () => {
    mock.setFaults({ brokenStreamAfterChunks: 3 });
    const response = await fetch(`${mock.url}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ ...chatBody, stream: true }),
    });
    assert.equal(response.status, 200);
    let received = "";
    const decoder = new TextDecoder();
    await assert.rejects(async () => {
      for await (const bytes of response.body ?? []) received += decoder.decode(bytes, { stream: true });
    });
    const events = sseEvents(received);
    assert.equal(events.length, 3);
    assert.ok(!events.includes("[DONE]"));
    assert.equal(mock.stats().clientDisconnects, 0, "the mock's own cut is not a client disconnect");
  });

  test("drop closes the connection without an answer", async () => {
    mock.setFaults({ failNext: [{ drop: true }] });
    await assert.rejects(call("/models"));
    assert.equal((await call("/models")).status, 200);
  });

  test("a client aborting mid-stream is seen as a disconnect", async () => {
    mock.setFaults({ streamChunkDelayMs: 30 });
    const controller = new AbortController();
    const response = await fetch(`${mock.url}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ ...chatBody, stream: true }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    await reader?.read();
    controller.abort();
    await waitFor(() => mock.stats().clientDisconnects === 1);
  });

  test("setFaults refuses unknown or mistyped knobs", () => {
    assert.throws(() => mock.setFaults({ errorRate: 2 }), /errorRate/);
    assert.throws(() => mock.setFaults({ nope: 1 } as never), /unknown fault knob: nope/);
  });
});

describe("control endpoints", () => {
  test("POST /__faults, GET /__stats and POST /__reset drive the mock from another process", async () => {
    const control = (path: string, body?: unknown) =>
      fetch(`${mock.url.replace(/\/v1$/, "")}${path}`, {
        method: body === undefined ? "GET" : "POST",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const set = await control("/__faults", { failNext: [{ status: 503 }], latencyMs: 5 });
    assert.equal(set.status, 200);
    assert.equal(((await set.json()) as { latencyMs: number }).latencyMs, 5);
    assert.equal((await call("/chat/completions", { body: chatBody })).status, 503);

    const stats = (await (await control("/__stats")).json()) as {
      requests: Record<string, number>;
      injectedFaults: number;
    };
    assert.equal(stats.requests["POST /v1/chat/completions"], 1);
    assert.equal(stats.injectedFaults, 1);

    assert.equal((await control("/__faults", { latencyMs: -1 })).status, 400);
    assert.equal((await control("/__reset", {})).status, 200);
    assert.equal(mock.faults().latencyMs, 0);
    assert.equal(mock.stats().totalRequests, 0);
  });
});

describe("command line", () => {
  test("parses the flags and MOCK_UPSTREAM_PORT", () => {
    assert.deepEqual(parseMockUpstreamArgs([], {}), { port: 8081, host: "127.0.0.1" });
    assert.equal(parseMockUpstreamArgs([], { MOCK_UPSTREAM_PORT: "9100" }).port, 9100);
    assert.deepEqual(
      parseMockUpstreamArgs(
        ["--port", "0", "--latency-ms", "20", "--error-rate", "0.1", "--rate-limit-rate", "0.2", "--api-key", "k"],
        { MOCK_UPSTREAM_PORT: "9100" },
      ),
      { port: 0, host: "127.0.0.1", latencyMs: 20, errorRate: 0.1, rateLimitRate: 0.2, apiKey: "k" },
    );
    assert.throws(() => parseMockUpstreamArgs(["--error-rate", "2"]), /--error-rate/);
    assert.throws(() => parseMockUpstreamArgs(["--port", "x"]), /--port/);
    assert.throws(() => parseMockUpstreamArgs(["--bogus"]));
  });
});
