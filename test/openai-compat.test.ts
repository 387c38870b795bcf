import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import OpenAI from "openai";
import { assertMatchesOpenAISchema } from "./helpers/openai-spec.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

/** The official OpenAI SDK (v6), pointed at the service, must not notice it is not talking to OpenAI. */
describe("OpenAI-compatible API with the official openai client", () => {
  let service: TestService;
  let user: { id: string; key: string };
  let client: OpenAI;

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: true });
    user = await service.createUser();
    client = new OpenAI({ apiKey: user.key, baseURL: `${service.url}/v1`, maxRetries: 0 });
  });
  after(() => service.close());

  const unique = (text: string) => `${text} ${Date.now()} ${Math.random()}`;
  const stored = async (id: string) => (await service.call("GET", `/requests/${id}`, { key: user.key })).body;
  const latest = async (status?: string) => {
    const list = await service.call("GET", `/requests?limit=1${status ? `&status=${status}` : ""}`, { key: user.key });
    return list.body.data[0];
  };

  test("plain chat: OpenAI's completion object, recorded as a chat request with usage and cost", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: unique("Hello") }] })
      .withResponse();
    assertMatchesOpenAISchema("CreateChatCompletionResponse", data);
    assert.equal(data.object, "chat.completion");
    assert.ok(data.choices[0]?.message.content);
    assert.equal(response.headers.get("x-cache"), "miss");
    const recordId = response.headers.get("x-record-id");
    assert.match(recordId ?? "", /^req_/);
    const record = await stored(recordId!);
    assert.equal(record.type, "chat");
    assert.equal(record.status, "completed");
    assert.equal(record.output, data.choices[0]?.message.content);
    assert.equal(record.usage.total_tokens, data.usage?.total_tokens);
    assert.ok(record.cost_usd > 0);
  });

  test("every request field passes through to the upstream (n, seed, stop, logprobs …)", async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: unique("Two answers please") }],
        n: 2,
        seed: 7,
        stop: ["\n\n"],
        temperature: 0.3,
        logprobs: false,
        user: "end-user-1",
      })
      .withResponse();
    assert.equal(data.choices.length, 2, "n reached the upstream");
    const record = await stored(response.headers.get("x-record-id")!);
    assert.deepEqual(
      {
        n: record.options.n,
        seed: record.options.seed,
        stop: record.options.stop,
        temperature: record.options.temperature,
      },
      { n: 2, seed: 7, stop: ["\n\n"], temperature: 0.3 },
    );
  });

  test("tool calls pass through both ways", async () => {
    const completion = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: unique("What is the weather in Paris?") }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          },
        },
      ],
      tool_choice: "required",
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    assert.ok(call && call.type === "function");
    assert.equal(call.function.name, "get_weather");
    assert.equal(typeof JSON.parse(call.function.arguments).city, "string");
    assert.equal(completion.choices[0]?.finish_reason, "tool_calls");
  });

  test("structured output answers JSON that fits the schema", async () => {
    const completion = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: unique("Ada, 36") }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "person",
          strict: true,
          schema: {
            type: "object",
            properties: { name: { type: "string" }, age: { type: "integer" } },
            required: ["name", "age"],
            additionalProperties: false,
          },
        },
      },
    });
    const value = JSON.parse(completion.choices[0]?.message.content ?? "");
    assert.equal(typeof value.name, "string");
    assert.ok(Number.isInteger(value.age));
  });

  test("a stream without include_usage: OpenAI's chunks, no usage shown, usage still recorded", async () => {
    const messages = [{ role: "user" as const, content: unique("Stream to me") }];
    const plain = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages },
      { headers: { "cache-control": "no-store" } },
    );
    const stream = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages, stream: true },
      { headers: { "cache-control": "no-store" } },
    );
    let text = "";
    let chunks = 0;
    for await (const chunk of stream) {
      assertMatchesOpenAISchema("CreateChatCompletionStreamResponse", chunk);
      assert.ok(!("usage" in chunk), "no usage field unless asked for");
      text += chunk.choices[0]?.delta.content ?? "";
      chunks++;
    }
    assert.ok(chunks > 2, "the answer came in several chunks");
    assert.equal(text, plain.choices[0]?.message.content, "the stream says what the plain call says");
    const record = await latest();
    assert.equal(record.type, "chat");
    assert.equal(record.output, text);
    assert.ok(record.usage.prompt_tokens > 0 && record.usage.completion_tokens > 0, "usage recorded");
  });

  test("a stream with include_usage ends with the usage chunk", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: unique("Usage please") }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.ok(last?.usage && last.usage.total_tokens > 0);
    const record = await latest();
    assert.equal(record.usage.total_tokens, last.usage.total_tokens);
  });

  test("the raw stream is OpenAI's SSE, ending in data: [DONE]", async () => {
    const response = await fetch(`${service.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: unique("raw") }],
        stream: true,
      }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const text = await response.text();
    assert.ok(text.endsWith("data: [DONE]\n\n"), text.slice(-80));
    for (const event of text.trim().split("\n\n")) assert.match(event, /^data: /);
  });

  test("a cached answer is replayed as a stream", async () => {
    const messages = [{ role: "user" as const, content: unique("Cache then stream") }];
    const first = await client.chat.completions.create({ model: "gpt-4o-mini", messages });
    const { data: stream, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    assert.equal(response.headers.get("x-cache"), "hit");
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, first.choices[0]?.message.content);
    assert.equal(usage?.total_tokens, first.usage?.total_tokens);
    const record = await latest();
    assert.equal(record.cached, true);
    assert.equal(record.cost_usd, 0);
  });

  test("a client that disconnects mid-stream cancels the upstream call; stored as cancelled with its tokens", async () => {
    service.upstream!.setFaults({ streamChunkDelayMs: 150 });
    const disconnects = service.upstream!.stats().clientDisconnects;
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages: [{ role: "user", content: unique("A long story please") }], stream: true },
      { signal: controller.signal },
    );
    let received = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) received++;
        if (received === 2) controller.abort();
      }
    } catch {
      // the abort ends the loop
    }
    let record:
      | { status: string; usage: { prompt_tokens: number; completion_tokens: number }; output: string }
      | undefined;
    for (let i = 0; i < 40 && record?.status !== "cancelled"; i++) {
      await delay(50);
      record = await latest("cancelled");
    }
    service.upstream!.setFaults({ streamChunkDelayMs: 0 });
    assert.equal(record?.status, "cancelled");
    assert.ok(record.usage.prompt_tokens > 0, "prompt tokens counted");
    assert.ok(record.usage.completion_tokens > 0, "the partial answer's tokens counted");
    assert.ok(record.output.length > 0, "the partial output is kept");
    for (let i = 0; i < 20 && service.upstream!.stats().clientDisconnects === disconnects; i++) await delay(25);
    assert.ok(service.upstream!.stats().clientDisconnects > disconnects, "the mock saw its connection closed");
  });

  test("an upstream stream that breaks ends in an error event; stored as failed with what was produced", async () => {
    service.upstream!.setFaults({ failNext: [{ brokenStreamAfterChunks: 3 }] });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: unique("This will break") }],
      stream: true,
    });
    let text = "";
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    }, OpenAI.APIError);
    const record = await latest("failed");
    assert.equal(record.status, "failed");
    assert.equal(record.error.code, "upstream_error");
    assert.equal(record.output, text);
  });

  test("embeddings with a string and with an array; the models list", async () => {
    const one = await client.embeddings.create({ model: "text-embedding-3-small", input: unique("one") });
    assertMatchesOpenAISchema("CreateEmbeddingResponse", one);
    assert.equal(one.data.length, 1);
    const many = await client.embeddings.create({
      model: "text-embedding-3-small",
      input: ["a", "b", "c"],
      dimensions: 8,
    });
    assert.equal(many.data.length, 3);
    assert.equal(many.data[0]?.embedding.length, 8);
    const record = await latest();
    assert.equal(record.type, "embed");
    assert.equal(record.output.embeddings.length, 3);

    const models = await client.models.list();
    assertMatchesOpenAISchema("ListModelsResponse", { object: "list", data: models.data });
    assert.ok(models.data.some((model) => model.id === "gpt-4o-mini"));
  });

  test("errors are OpenAI's, so the SDK raises its own typed errors", async () => {
    const stranger = new OpenAI({ apiKey: `arh_${"A".repeat(40)}`, baseURL: `${service.url}/v1`, maxRetries: 0 });
    await assert.rejects(
      stranger.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      OpenAI.AuthenticationError,
    );
    await assert.rejects(client.chat.completions.create({ model: "gpt-4o-mini", messages: [] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, "messages");
      assertMatchesOpenAISchema("ErrorResponse", error.error === undefined ? {} : { error: error.error });
      return true;
    });
    await assert.rejects(
      client.embeddings.create({ model: "text-embedding-3-small", input: [] as string[] }),
      OpenAI.BadRequestError,
    );
    // A user over its rate limit: the SDK's own RateLimitError, with OpenAI's headers.
    const limitedUser = await service.call("POST", "/admin/users", {
      key: service.adminKey,
      body: { email: `limited-${Date.now()}@example.com`, limits: { rpm: 1 } },
    });
    const limitedKey = await service.call("POST", `/admin/users/${limitedUser.body.id}/keys`, {
      key: service.adminKey,
      body: {},
    });
    const limited = new OpenAI({ apiKey: limitedKey.body.key, baseURL: `${service.url}/v1`, maxRetries: 0 });
    const hello = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: unique("limited") }] };
    await limited.chat.completions.create(hello);
    await assert.rejects(limited.chat.completions.create(hello), (error: unknown) => {
      assert.ok(error instanceof OpenAI.RateLimitError);
      assert.equal(error.headers?.get("x-ratelimit-limit-requests"), "1");
      assert.equal(error.headers?.get("x-ratelimit-remaining-requests"), "0");
      assert.ok(Number(error.headers?.get("retry-after")) >= 1);
      return true;
    });
    service.upstream!.setFaults({ failNext: [{ status: 500 }, { status: 500 }, { status: 500 }] });
    await assert.rejects(
      client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: unique("fail") }] }),
      (error: unknown) => error instanceof OpenAI.InternalServerError && error.status === 502,
    );
    const raw = await service.call("POST", "/v1/chat/completions", {
      key: user.key,
      rawBody: "{nope",
      headers: { "content-type": "application/json" },
    });
    assert.equal(raw.status, 400);
    assertMatchesOpenAISchema("ErrorResponse", raw.body);
  });
});

describe("native streaming (POST /requests with stream: true)", () => {
  let service: TestService;
  let user: { id: string; key: string };
  before(async () => {
    service = await startTestService({ backend: "pglite", redis: false });
    user = await service.createUser();
  });
  after(() => service.close());

  async function events(body: unknown) {
    const response = await fetch(`${service.url}/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = text
      .trim()
      .split("\n\n")
      .map((block) => {
        const [eventLine, dataLine] = block.split("\n");
        return {
          event: eventLine?.replace("event: ", ""),
          data: JSON.parse(dataLine?.replace("data: ", "") ?? "null"),
        };
      });
    return { response, events: parsed };
  }

  test("text deltas, then a done event with the stored request object", async () => {
    const body = { type: "summarize", input: `Stream a summary ${Date.now()}`, stream: true };
    const { response, events: list } = await events(body);
    assert.equal(response.status, 201);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("x-cache"), "miss");
    const deltas = list.filter((e) => e.event === "delta");
    assert.ok(deltas.length > 1);
    const done = list.at(-1);
    assert.equal(done?.event, "done");
    assert.equal(done?.data.object, "request");
    assert.equal(done?.data.output, deltas.map((e) => e.data.delta).join(""));
    const storedRecord = await service.call("GET", `/requests/${done?.data.id}`, { key: user.key });
    assert.equal(storedRecord.body.output, done?.data.output);

    // The repeat, plain or streamed, comes from the cache.
    const plain = await service.call("POST", "/requests", { key: user.key, body: { ...body, stream: false } });
    assert.equal(plain.headers.get("x-cache"), "hit");
    assert.equal(plain.body.output, done?.data.output);
    const again = await events(body);
    assert.equal(again.response.headers.get("x-cache"), "hit");
    assert.equal(again.events.at(-1)?.data.output, done?.data.output);
  });

  test("only chat, summarize and translate stream", async () => {
    const answer = await service.call("POST", "/requests", {
      key: user.key,
      body: { type: "classify", input: "x", options: { labels: ["a", "b"] }, stream: true },
    });
    assert.equal(answer.status, 422);
    assert.equal(answer.body.errors[0].path, "stream");
  });
});
