/**
 * The mock upstream speaking Anthropic's Messages API over a real socket: the official `@anthropic-ai/sdk` client
 * working against it (its stream accumulator rebuilding the very message the JSON route answers), the exact SSE
 * event sequence, tool use, thinking, stop sequences, prompt caching, count_tokens, the strict validation, the
 * error bodies and every fault knob on Anthropic's routes.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, beforeEach, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { Message, MessageCreateParamsNonStreaming, Tool } from "@anthropic-ai/sdk/resources/messages";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parseMockUpstreamArgs } from "../src/mock-upstream/main.ts";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";

const apiKey = "sk-ant-mock-test-key";
const model = "claude-sonnet-4-6";
const weatherSchema = {
  type: "object" as const,
  properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};
const tools: Tool[] = [
  { name: "lookup", description: "Looks a word up.", input_schema: { type: "object", properties: {} } },
  { name: "get_weather", description: "The weather in a city.", input_schema: weatherSchema },
];
const baseBody = {
  model,
  max_tokens: 256,
  system: "You are terse.",
  messages: [{ role: "user", content: "Explain the lighthouse keeper's routine" }],
} satisfies MessageCreateParamsNonStreaming;

let mock: MockUpstream;
let root: string;

const client = (options: { apiKey?: string } = {}) =>
  new Anthropic({ apiKey: options.apiKey ?? apiKey, baseURL: root, maxRetries: 0 });

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answer fields freely and assert on them.
  json: () => any;
}

/** A raw request as Anthropic's own docs send it: `x-api-key` and `anthropic-version: 2023-06-01`. */
async function call(
  path: string,
  init: {
    method?: string;
    body?: unknown;
    key?: string | null;
    version?: string | null;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json", ...init.headers };
  const key = init.key === undefined ? apiKey : init.key;
  if (key !== null) headers["x-api-key"] = key;
  const version = init.version === undefined ? "2023-06-01" : init.version;
  if (version !== null) headers["anthropic-version"] = version;
  const response = await fetch(`${root}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
    signal: init.signal,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

interface SseEvent {
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read event fields freely and assert on them.
  data: any;
  rawData: string;
}

/** The named events of an SSE body; every block must be exactly `event: <name>\ndata: <json>`. */
function sseEvents(text: string): SseEvent[] {
  assert.ok(text === "" || text.endsWith("\n\n"), "the body ends on a complete event");
  return text
    .split("\n\n")
    .filter((block) => block !== "")
    .map((block) => {
      const match = /^event: ([a-z_]+)\ndata: (.*)$/.exec(block);
      assert.ok(match, `not a named SSE event: ${JSON.stringify(block)}`);
      const [, event = "", rawData = ""] = match;
      return { event, data: JSON.parse(rawData), rawData };
    });
}

/** The body of a stream that the server cuts, up to the cut (the read rejects). */
async function readUntilCut(response: Response): Promise<string> {
  let received = "";
  const decoder = new TextDecoder();
  await assert.rejects(async () => {
    for await (const bytes of response.body ?? []) received += decoder.decode(bytes, { stream: true });
  });
  return received;
}

async function waitFor(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A message without what differs from one answer to the next (ids) or what only the SDK adds. */
function comparable(message: Message): unknown {
  const { id: _id, ...rest } = message;
  delete (rest as { parsed_output?: unknown }).parsed_output;
  return {
    ...rest,
    content: rest.content.map((block) => (block.type === "tool_use" ? { ...block, id: "toolu_*" } : block)),
  };
}

before(async () => {
  mock = await startMockUpstream({ apiKey });
  root = mock.url.replace(/\/v1$/, "");
});

after(async () => {
  await mock.close();
});

beforeEach(() => {
  mock.resetFaults();
  mock.resetStats();
});

describe("messages through the official SDK", () => {
  test("a Message: ids, text, end_turn, usage; deterministic; request-id header", async () => {
    const { data: message, response } = await client().messages.create(baseBody).withResponse();
    assert.match(message.id, /^msg_01\w{22}$/);
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.equal(message.model, model);
    assert.equal(message.content.length, 1);
    const block = message.content[0];
    assert.equal(block?.type, "text");
    assert.match(block?.type === "text" ? block.text : "", /^Mock answer: /);
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.stop_sequence, null);
    assert.ok(message.usage.input_tokens > 5 && message.usage.output_tokens > 5);
    assert.equal(message.usage.cache_creation_input_tokens, 0);
    assert.equal(message.usage.cache_read_input_tokens, 0);
    assert.deepEqual(message.usage.cache_creation, { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 });
    assert.equal(message.usage.output_tokens_details, null);
    assert.equal(message.usage.service_tier, "standard");
    assert.match(response.headers.get("request-id") ?? "", /^req_/);

    const again = await client().messages.create(baseBody);
    assert.notEqual(again.id, message.id);
    assert.deepEqual(comparable(again), comparable(message));
    const other = await client().messages.create({
      ...baseBody,
      messages: [{ role: "user", content: "Something else" }],
    });
    assert.notDeepEqual(other.content, message.content);
  });

  test("the raw stream is Anthropic's exact event sequence, and adds up to the JSON answer", async () => {
    const json = (await call("/v1/messages", { body: baseBody })).json() as Message;
    const answer = await call("/v1/messages", { body: { ...baseBody, stream: true } });
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.match(answer.headers.get("request-id") ?? "", /^req_/);
    assert.ok(!answer.text.includes("[DONE]"));
    const events = sseEvents(answer.text);
    for (const { event, data } of events) assert.equal(data.type, event, "each event's data names its event");
    const types = events.map((event) => event.event);
    const deltas = types.filter((type) => type === "content_block_delta").length;
    assert.ok(deltas >= 3, "the text arrives in several pieces");
    assert.deepEqual(types, [
      "message_start",
      "content_block_start",
      "ping",
      ...Array<string>(deltas).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    assert.equal(events[2]?.rawData, '{"type": "ping"}');

    const start = events[0]?.data.message;
    assert.match(start.id, /^msg_01/);
    assert.deepEqual(start.content, []);
    assert.equal(start.stop_reason, null);
    assert.equal(start.stop_sequence, null);
    assert.equal(start.usage.output_tokens, 1);
    assert.equal(start.usage.input_tokens, json.usage.input_tokens);
    assert.deepEqual(events[1]?.data, {
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "", citations: null },
    });
    const text = events
      .filter((event) => event.event === "content_block_delta")
      .map((event) => {
        assert.equal(event.data.index, 0);
        assert.equal(event.data.delta.type, "text_delta");
        return event.data.delta.text as string;
      })
      .join("");
    assert.equal(text, json.content[0]?.type === "text" ? json.content[0].text : undefined);
    assert.deepEqual(events.at(-3)?.data, { type: "content_block_stop", index: 0 });
    assert.deepEqual(events.at(-2)?.data, {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null, stop_details: null, container: null },
      usage: {
        input_tokens: json.usage.input_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: json.usage.output_tokens,
        output_tokens_details: null,
        server_tool_use: null,
      },
    });
    assert.deepEqual(events.at(-1)?.data, { type: "message_stop" });
    assert.equal(mock.stats().streams, 1);
  });

  test("the SDK's raw stream: types and indexes in order; messages.stream() rebuilds the JSON answer", async () => {
    const stream = await client().messages.create({ ...baseBody, stream: true });
    const seen: string[] = [];
    for await (const event of stream) {
      seen.push("index" in event ? `${event.type}:${event.index}` : event.type);
    }
    const deltas = seen.filter((type) => type === "content_block_delta:0").length;
    assert.deepEqual(seen, [
      "message_start",
      "content_block_start:0",
      ...Array<string>(deltas).fill("content_block_delta:0"),
      "content_block_stop:0",
      "message_delta",
      "message_stop",
    ]);

    const json = await client().messages.create(baseBody);
    const final = await client().messages.stream(baseBody).finalMessage();
    assert.deepEqual(comparable(final), comparable(json));
  });

  test("a forced tool: a tool_use block whose input satisfies the schema, stop_reason tool_use", async () => {
    const named = await client().messages.create({
      ...baseBody,
      tools,
      tool_choice: { type: "tool", name: "get_weather" },
    });
    assert.equal(named.stop_reason, "tool_use");
    assert.equal(named.content.length, 1);
    const use = named.content[0];
    assert.ok(use?.type === "tool_use");
    assert.match(use.id, /^toolu_01\w{22}$/);
    assert.equal(use.name, "get_weather");
    const validate = new Ajv2020({ strict: false }).compile(weatherSchema);
    assert.ok(validate(use.input), JSON.stringify(validate.errors));
    assert.ok(named.usage.output_tokens > 0);

    const any = await client().messages.create({ ...baseBody, tools, tool_choice: { type: "any" } });
    assert.equal(any.content[0]?.type === "tool_use" ? any.content[0].name : undefined, "lookup");
    const auto = await client().messages.create({ ...baseBody, tools });
    assert.equal(auto.stop_reason, "end_turn");
    assert.equal(auto.content[0]?.type, "text");

    // The stream: an empty input at the start, then input_json_delta pieces that add up to the input.
    const streamed = await call("/v1/messages", {
      body: { ...baseBody, tools, tool_choice: { type: "tool", name: "get_weather" }, stream: true },
    });
    const events = sseEvents(streamed.text);
    const start = events.find((event) => event.event === "content_block_start")?.data;
    assert.deepEqual({ ...start.content_block, id: "toolu_*" }, { ...use, id: "toolu_*", input: {} });
    const pieces = events
      .filter((event) => event.event === "content_block_delta")
      .map((event) => {
        assert.equal(event.data.delta.type, "input_json_delta");
        return event.data.delta.partial_json as string;
      });
    assert.equal(pieces[0], "");
    assert.ok(pieces.length >= 3);
    assert.deepEqual(JSON.parse(pieces.join("")), use.input);
    assert.equal(events.at(-2)?.data.delta.stop_reason, "tool_use");

    const final = await client()
      .messages.stream({ ...baseBody, tools, tool_choice: { type: "tool", name: "get_weather" } })
      .finalMessage();
    assert.deepEqual(comparable(final), comparable(named));

    // The next turn answers the tool use with its result.
    const next = await client().messages.create({
      ...baseBody,
      tools,
      messages: [
        ...baseBody.messages,
        { role: "assistant", content: named.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "12 degrees, windy" }] },
      ],
    });
    assert.equal(next.stop_reason, "end_turn");
  });

  test("thinking: a thinking block with its signature before the answer, streamed as deltas", async () => {
    const body = { ...baseBody, max_tokens: 2048, thinking: { type: "enabled" as const, budget_tokens: 1024 } };
    const message = await client().messages.create(body);
    assert.deepEqual(
      message.content.map((block) => block.type),
      ["thinking", "text"],
    );
    const thinking = message.content[0];
    assert.ok(thinking?.type === "thinking");
    assert.ok(thinking.thinking.length > 10);
    assert.match(thinking.signature, /^[A-Za-z0-9+/]{40,}={0,2}$/);
    const thinkingTokens = message.usage.output_tokens_details?.thinking_tokens ?? 0;
    assert.ok(thinkingTokens > 0 && message.usage.output_tokens > thinkingTokens);

    const events = sseEvents((await call("/v1/messages", { body: { ...body, stream: true } })).text);
    const block0 = events.filter((event) => event.data.index === 0).map((event) => event.data);
    assert.deepEqual(block0[0], {
      type: "content_block_start",
      index: 0,
      content_block: { type: "thinking", thinking: "", signature: "" },
    });
    assert.equal(events[2]?.event, "ping", "the ping follows the first block's start");
    const kinds = block0.slice(1).map((data) => data.delta?.type ?? data.type);
    assert.ok(kinds.filter((kind) => kind === "thinking_delta").length >= 2);
    assert.deepEqual(kinds.slice(-2), ["signature_delta", "content_block_stop"]);
    assert.equal(block0.at(-2)?.delta.signature, thinking.signature);
    assert.equal(
      block0
        .filter((data) => data.delta?.type === "thinking_delta")
        .map((data) => data.delta.thinking)
        .join(""),
      thinking.thinking,
    );
    assert.ok(events.some((event) => event.event === "content_block_start" && event.data.index === 1));
    assert.deepEqual(comparable(await client().messages.stream(body).finalMessage()), comparable(message));

    // The thinking block goes back unchanged in the next turn.
    const next = await client().messages.create({
      ...body,
      messages: [
        ...body.messages,
        { role: "assistant", content: message.content },
        { role: "user", content: "And at night?" },
      ],
    });
    assert.equal(next.content[0]?.type, "thinking");

    const omitted = await client().messages.create({
      ...body,
      thinking: { type: "enabled", budget_tokens: 1024, display: "omitted" },
    });
    assert.ok(omitted.content[0]?.type === "thinking" && omitted.content[0].thinking === "");
    assert.ok(omitted.content[0]?.type === "thinking" && omitted.content[0].signature !== "");
  });

  test("stop sequences cut the text before the first one found; max_tokens cuts with max_tokens", async () => {
    const plain = await client().messages.create(baseBody);
    const text = plain.content[0]?.type === "text" ? plain.content[0].text : "";
    const word = text.split(" ")[3] ?? "";
    assert.ok(word.length > 2);
    const body = { ...baseBody, stop_sequences: ["never-in-the-answer", ` ${word}`] };
    const stopped = await client().messages.create(body);
    assert.equal(stopped.stop_reason, "stop_sequence");
    assert.equal(stopped.stop_sequence, ` ${word}`);
    assert.equal(
      stopped.content[0]?.type === "text" ? stopped.content[0].text : "",
      text.slice(0, text.indexOf(` ${word}`)),
    );
    assert.ok(stopped.usage.output_tokens < plain.usage.output_tokens);
    assert.deepEqual(comparable(await client().messages.stream(body).finalMessage()), comparable(stopped));

    const short = await client().messages.create({ ...baseBody, max_tokens: 3 });
    assert.equal(short.stop_reason, "max_tokens");
    assert.equal(short.usage.output_tokens, 3);
  });

  test("output_config.format: the text is JSON satisfying the schema (messages.parse reads it)", async () => {
    const schema = {
      type: "object",
      properties: {
        label: { type: "string", enum: ["good", "bad"] },
        score: { type: "integer", minimum: 1, maximum: 5 },
      },
      required: ["label", "score"],
      additionalProperties: false,
    };
    const parsed = await client().messages.parse({
      ...baseBody,
      output_config: { format: { type: "json_schema", schema } },
    });
    const validate = new Ajv2020({ strict: false }).compile(schema);
    assert.ok(validate(parsed.parsed_output), JSON.stringify(validate.errors));
  });

  test("prompt caching: the prefix up to the last cache_control is written once, then read", async () => {
    const longText = `${randomUUID()} ${"The keeper trims the wick and logs the weather. ".repeat(40)}`;
    const body = {
      ...baseBody,
      system: [
        { type: "text" as const, text: longText, cache_control: { type: "ephemeral" as const } },
        { type: "text" as const, text: "Answer in one line." },
      ],
    };
    const total = (await client().messages.countTokens({ model, system: body.system, messages: body.messages }))
      .input_tokens;
    const first = await client().messages.create(body);
    assert.ok((first.usage.cache_creation_input_tokens ?? 0) > 400);
    assert.equal(first.usage.cache_read_input_tokens, 0);
    assert.equal(first.usage.cache_creation?.ephemeral_5m_input_tokens, first.usage.cache_creation_input_tokens);
    assert.equal(first.usage.input_tokens + (first.usage.cache_creation_input_tokens ?? 0), total);

    const second = await client().messages.create(body);
    assert.equal(second.usage.cache_creation_input_tokens, 0);
    assert.equal(second.usage.cache_read_input_tokens, first.usage.cache_creation_input_tokens);
    assert.equal(second.usage.input_tokens, first.usage.input_tokens);

    // The stream reports the read in message_start (and again in message_delta).
    const events = sseEvents((await call("/v1/messages", { body: { ...body, stream: true } })).text);
    assert.equal(events[0]?.data.message.usage.cache_read_input_tokens, first.usage.cache_creation_input_tokens);
    assert.equal(events.at(-2)?.data.usage.cache_read_input_tokens, first.usage.cache_creation_input_tokens);

    // A later breakpoint: the cached prefix is read, only what follows it up to the new breakpoint is written.
    const longer = await client().messages.create({
      ...body,
      messages: [
        {
          role: "user",
          content: [{ type: "text", text: "Explain the routine", cache_control: { type: "ephemeral", ttl: "1h" } }],
        },
      ],
    });
    assert.equal(longer.usage.cache_read_input_tokens, first.usage.cache_creation_input_tokens);
    assert.ok((longer.usage.cache_creation_input_tokens ?? 0) > 0);
    assert.equal(longer.usage.cache_creation?.ephemeral_1h_input_tokens, longer.usage.cache_creation_input_tokens);
    assert.equal(longer.usage.input_tokens, 0, "nothing follows the last breakpoint");
  });

  test("count_tokens equals the answer's input tokens, with tools, and under the bytesPerToken knob", async () => {
    const body = { ...baseBody, tools };
    const { system, messages } = body;
    const counted = await client().messages.countTokens({ model, system, messages, tools });
    const answer = await client().messages.create(body);
    assert.equal(counted.input_tokens, answer.usage.input_tokens);
    const withoutTools = await client().messages.countTokens({ model, system, messages });
    assert.ok(withoutTools.input_tokens < counted.input_tokens);

    mock.setFaults({ bytesPerToken: 1 });
    const byBytes = await client().messages.countTokens({ model, system, messages, tools });
    assert.ok(byBytes.input_tokens > counted.input_tokens * 2, "one token a byte is many more tokens");
    assert.equal((await client().messages.create(body)).usage.input_tokens, byBytes.input_tokens);
    const events = sseEvents((await call("/v1/messages", { body: { ...body, stream: true } })).text);
    assert.equal(events[0]?.data.message.usage.input_tokens, byBytes.input_tokens);
    assert.equal(mock.stats().requests["POST /v1/messages/count_tokens"], 3);
  });

  test("models: Anthropic's page when asked with anthropic-version, OpenAI's list otherwise", async () => {
    const ids: string[] = [];
    for await (const info of client().models.list()) {
      assert.equal(info.type, "model");
      assert.equal(typeof info.display_name, "string");
      assert.ok(!Number.isNaN(Date.parse(info.created_at)));
      ids.push(info.id);
    }
    assert.ok(ids.includes(model) && ids.includes("mock"));
    const page = (await call("/v1/models")).json();
    assert.equal(page.has_more, false);
    assert.equal(page.first_id, ids[0]);
    assert.equal(page.last_id, ids.at(-1));
    assert.equal((await client().models.retrieve(model)).id, model);
    await assert.rejects(client().models.retrieve("claude-unknown"), Anthropic.NotFoundError);

    const openai = await fetch(`${root}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(((await openai.json()) as { object: string }).object, "list");
  });
});

describe("auth and API versions", () => {
  test("x-api-key or a bearer key; a missing or wrong one is a 401 authentication_error", async () => {
    const missing = await call("/v1/messages", { body: baseBody, key: null });
    assert.equal(missing.status, 401);
    assert.deepEqual(missing.json(), {
      type: "error",
      error: { type: "authentication_error", message: "x-api-key header is required" },
      request_id: missing.headers.get("request-id"),
    });
    const wrong = await call("/v1/messages", { body: baseBody, key: "sk-wrong" });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json().error, { type: "authentication_error", message: "invalid x-api-key" });
    const bearer = await call("/v1/messages", {
      body: baseBody,
      key: null,
      headers: { authorization: `Bearer ${apiKey}` },
    });
    assert.equal(bearer.status, 200);
    await assert.rejects(
      client({ apiKey: "sk-wrong" }).messages.create(baseBody),
      (error: unknown) => error instanceof Anthropic.AuthenticationError && error.type === "authentication_error",
    );
  });

  test("anthropic-version is required and must be a version the API knows", async () => {
    const missing = await call("/v1/messages", { body: baseBody, version: null });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json().error, {
      type: "invalid_request_error",
      message: "anthropic-version: header is required",
    });
    const bogus = await call("/v1/messages", { body: baseBody, version: "2024-01-01" });
    assert.equal(bogus.status, 400);
    assert.match(bogus.json().error.message, /^anthropic-version: "2024-01-01" is not a valid version$/);
    assert.equal((await call("/v1/messages", { body: baseBody, version: "2026-10-21" })).status, 200);
  });

  test("temperature: 0..1 on 2023-06-01, an extra input on 2026-10-21 (what SDK 1.x sends)", async () => {
    assert.equal((await call("/v1/messages", { body: { ...baseBody, temperature: 0.5 } })).status, 200);
    const high = await call("/v1/messages", { body: { ...baseBody, temperature: 1.5 } });
    assert.equal(high.status, 400);
    assert.equal(high.json().error.message, "temperature: Input should be less than or equal to 1");
    const removed = await call("/v1/messages", { body: { ...baseBody, temperature: 0.5 }, version: "2026-10-21" });
    assert.equal(removed.status, 400);
    assert.equal(removed.json().error.message, "temperature: Extra inputs are not permitted");
  });
});

describe("strict validation (400 invalid_request_error)", () => {
  const user = (content: unknown) => ({ role: "user", content });
  const assistant = (content: unknown) => ({ role: "assistant", content });
  const toolUse = { type: "tool_use", id: "toolu_01abc", name: "get_weather", input: { city: "Oslo" } };
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["model missing", { ...baseBody, model: undefined }, /^model: Field required$/],
    ["model not a string", { ...baseBody, model: 4 }, /^model: Input should be a valid string$/],
    ["max_tokens missing", { ...baseBody, max_tokens: undefined }, /^max_tokens: Field required$/],
    ["max_tokens zero", { ...baseBody, max_tokens: 0 }, /^max_tokens: Input should be greater than or equal to 1$/],
    ["max_tokens fractional", { ...baseBody, max_tokens: 1.5 }, /^max_tokens: Input should be a valid integer$/],
    ["messages empty", { ...baseBody, messages: [] }, /^messages: at least one message is required$/],
    ["messages not a list", { ...baseBody, messages: "hi" }, /^messages: Input should be a valid list$/],
    [
      "a system message in messages",
      { ...baseBody, messages: [user("hi"), { role: "system", content: "Be terse." }] },
      /^messages\.1\.role: Input should be 'user' or 'assistant'/,
    ],
    ["a tool role", { ...baseBody, messages: [user("hi"), { role: "tool", content: "x" }] }, /^messages\.1\.role: /],
    [
      "an OpenAI field on a message",
      { ...baseBody, messages: [{ role: "user", content: "hi", name: "bob" }] },
      /^messages\.0\.name: Extra inputs are not permitted$/,
    ],
    [
      "empty content",
      { ...baseBody, messages: [user("")] },
      /^messages\.0: all messages must have non-empty content except for the optional final assistant message$/,
    ],
    ["empty block list", { ...baseBody, messages: [user([])] }, /^messages\.0: all messages must have non-empty/],
    [
      "an empty text block",
      { ...baseBody, messages: [user([{ type: "text", text: "" }])] },
      /^messages: text content blocks must be non-empty$/,
    ],
    [
      "an OpenAI content part",
      { ...baseBody, messages: [user([{ type: "image_url", image_url: { url: "https://x/y.png" } }])] },
      /^messages\.0\.content\.0: Input tag 'image_url' found using 'type' does not match any of the expected tags: 'text', 'image'/,
    ],
    [
      "an image with an unknown media type",
      {
        ...baseBody,
        messages: [user([{ type: "image", source: { type: "base64", media_type: "image/bmp", data: "Qk0=" } }])],
      },
      /^messages\.0\.content\.0\.image\.source\.base64\.media_type: Input should be 'image\/jpeg'/,
    ],
    [
      "two user messages in a row",
      { ...baseBody, messages: [user("hi"), user("again")] },
      /^messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row$/,
    ],
    [
      "a tool result without its tool use",
      {
        ...baseBody,
        messages: [
          user("hi"),
          assistant("Checking."),
          user([{ type: "tool_result", tool_use_id: "toolu_01zzz", content: "x" }]),
        ],
      },
      /^messages\.2\.content\.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_01zzz\. Each `tool_result` block must have a corresponding `tool_use` block in the previous message\.$/,
    ],
    [
      "a tool use without its result",
      { ...baseBody, tools, messages: [user("hi"), assistant([toolUse]), user("what now?")] },
      /^messages\.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_01abc\./,
    ],
    [
      "a tool use in a user message",
      { ...baseBody, messages: [user([toolUse])] },
      /^messages\.0\.content\.0: `tool_use` blocks can only be in `assistant` messages$/,
    ],
    [
      "a tool without input_schema",
      { ...baseBody, tools: [{ name: "lookup" }] },
      /^tools\.0\.custom\.input_schema: Field required$/,
    ],
    [
      "an OpenAI-shaped tool",
      { ...baseBody, tools: [{ type: "function", function: { name: "lookup", parameters: {} } }] },
      /^tools\.0: Input tag 'function' found using 'type' does not match any of the expected tags/,
    ],
    [
      "a tool_choice naming an unknown tool",
      { ...baseBody, tools, tool_choice: { type: "tool", name: "nope" } },
      /^tool_choice\.tool\.name: Tool 'nope' not found in provided tools$/,
    ],
    [
      "an OpenAI tool_choice",
      { ...baseBody, tools, tool_choice: { type: "required" } },
      /^tool_choice: Input tag 'required' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'$/,
    ],
    ["temperature above 1", { ...baseBody, temperature: 2 }, /^temperature: Input should be less than or equal to 1$/],
    [
      "a thinking budget under 1024",
      { ...baseBody, thinking: { type: "enabled", budget_tokens: 512 } },
      /^thinking\.enabled\.budget_tokens: Input should be greater than or equal to 1024$/,
    ],
    [
      "a thinking budget not under max_tokens",
      { ...baseBody, max_tokens: 1024, thinking: { type: "enabled", budget_tokens: 1024 } },
      /^`max_tokens` must be greater than `thinking\.budget_tokens`\./,
    ],
    [
      "an unknown thinking type",
      { ...baseBody, thinking: { type: "on" } },
      /^thinking: Input tag 'on' found using 'type' does not match any of the expected tags/,
    ],
    [
      "thinking with a forced tool",
      {
        ...baseBody,
        max_tokens: 2048,
        tools,
        tool_choice: { type: "any" },
        thinking: { type: "enabled", budget_tokens: 1024 },
      },
      /^Thinking may not be enabled when tool_choice forces tool use\.$/,
    ],
    [
      "OpenAI's stream_options",
      { ...baseBody, stream: true, stream_options: { include_usage: true } },
      /^stream_options: Extra inputs are not permitted$/,
    ],
    [
      "a system block that is not text",
      { ...baseBody, system: [{ type: "image", source: {} }] },
      /^system\.0: Input tag 'image' found using 'type' does not match any of the expected tags: 'text'$/,
    ],
    [
      "an unknown cache_control field",
      { ...baseBody, system: [{ type: "text", text: "x", cache_control: { type: "ephemeral", scope: "global" } }] },
      /^system\.0\.cache_control\.ephemeral\.scope: Extra inputs are not permitted$/,
    ],
    [
      "five cache_control markers",
      {
        ...baseBody,
        system: Array.from({ length: 5 }, (_, i) => ({
          type: "text",
          text: `part ${i}`,
          cache_control: { type: "ephemeral" },
        })),
      },
      /^A maximum of 4 blocks with cache_control may be provided\. Found 5\.$/,
    ],
    [
      "stop_sequences not a list",
      { ...baseBody, stop_sequences: "END" },
      /^stop_sequences: Input should be a valid list$/,
    ],
    [
      "a prefill ending in whitespace",
      { ...baseBody, messages: [user("hi"), assistant("The answer is ")] },
      /^messages: final assistant content cannot end with trailing whitespace$/,
    ],
  ];
  for (const [name, body, message] of cases) {
    test(`${name}`, async () => {
      const answer = await call("/v1/messages", { body });
      assert.equal(answer.status, 400, answer.text);
      const error = answer.json();
      assert.equal(error.type, "error");
      assert.equal(error.error.type, "invalid_request_error");
      assert.match(error.error.message, message);
      assert.equal(error.request_id, answer.headers.get("request-id"));
    });
  }

  test("what the API takes: a prefill, a string or block system, images, documents, a tool round trip", async () => {
    const bodies = [
      { ...baseBody, messages: [user("hi"), assistant("The answer is")] },
      { ...baseBody, messages: [user("hi"), assistant([])] },
      { ...baseBody, system: [{ type: "text", text: "Be terse." }] },
      {
        ...baseBody,
        messages: [
          user([
            { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
            { type: "image", source: { type: "url", url: "https://example.com/a.png" } },
            { type: "document", source: { type: "text", media_type: "text/plain", data: "A short note." } },
            { type: "text", text: "Describe these." },
          ]),
        ],
      },
      {
        ...baseBody,
        tools,
        messages: [
          user("Weather in Oslo?"),
          assistant([{ type: "text", text: "Checking." }, toolUse]),
          user([{ type: "tool_result", tool_use_id: "toolu_01abc", content: [{ type: "text", text: "4 degrees" }] }]),
        ],
      },
    ];
    for (const body of bodies) {
      const answer = await call("/v1/messages", { body });
      assert.equal(answer.status, 200, answer.text);
    }
  });

  test("count_tokens validates too, and refuses what only /v1/messages takes", async () => {
    const extra = await call("/v1/messages/count_tokens", { body: baseBody });
    assert.equal(extra.status, 400);
    assert.equal(extra.json().error.message, "max_tokens: Extra inputs are not permitted");
    const { max_tokens: _max, ...countBody } = baseBody;
    assert.equal((await call("/v1/messages/count_tokens", { body: countBody })).status, 200);
  });

  test("malformed JSON, an unknown route and a wrong method answer in Anthropic's shape", async () => {
    const malformed = await call("/v1/messages", { body: "{not json" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json().error.type, "invalid_request_error");
    const unknown = await call("/v1/messages/batches-nope", { body: {} });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.type, "not_found_error");
    const method = await call("/v1/messages");
    assert.equal(method.status, 405);
    assert.equal(method.json().type, "error");
  });

  test("onMessagesRequest hears every body the gateway sent, refused ones too", async () => {
    const heard: unknown[] = [];
    const own = await startMockUpstream({ onMessagesRequest: (body) => heard.push(body) });
    try {
      const url = `${own.url}/messages`;
      const headers = { "x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json" };
      const invalid = { ...baseBody, messages: [user("a"), user("b")] };
      assert.equal((await fetch(url, { method: "POST", headers, body: JSON.stringify(invalid) })).status, 400);
      assert.equal((await fetch(url, { method: "POST", headers, body: JSON.stringify(baseBody) })).status, 200);
      assert.deepEqual(heard, [invalid, baseBody]);
    } finally {
      await own.close();
    }
  });
});

describe("errors and faults on Anthropic's routes", () => {
  test("scripted statuses answer Anthropic's error bodies, raised as the SDK's typed errors", async () => {
    const cases: Array<[number, string, (error: unknown) => boolean]> = [
      [400, "invalid_request_error", (error) => error instanceof Anthropic.BadRequestError],
      [401, "authentication_error", (error) => error instanceof Anthropic.AuthenticationError],
      [403, "permission_error", (error) => error instanceof Anthropic.PermissionDeniedError],
      [404, "not_found_error", (error) => error instanceof Anthropic.NotFoundError],
      [413, "request_too_large", (error) => error instanceof Anthropic.ContentTooLargeError],
      [429, "rate_limit_error", (error) => error instanceof Anthropic.RateLimitError],
      [500, "api_error", (error) => error instanceof Anthropic.InternalServerError],
      [529, "overloaded_error", (error) => error instanceof Anthropic.OverloadedError],
    ];
    for (const [status, type, isClass] of cases) {
      mock.setFaults({ failNext: [{ status }] });
      await assert.rejects(client().messages.create(baseBody), (error: unknown) => {
        assert.ok(isClass(error), `${status}: ${String(error)}`);
        assert.ok(error instanceof Anthropic.APIError);
        assert.equal(error.status, status);
        assert.equal(error.type, type);
        assert.match(error.requestID ?? "", /^req_/);
        return true;
      });
    }
    mock.setFaults({ failNext: [{ status: 529 }] });
    const raw = await call("/v1/messages", { body: baseBody });
    assert.deepEqual(raw.json(), {
      type: "error",
      error: { type: "overloaded_error", message: "Overloaded" },
      request_id: raw.headers.get("request-id"),
    });
    assert.equal(mock.stats().injectedFaults, cases.length + 1);
  });

  test("429 carries retry-after; errorRate, rateLimitRate and overloadedRate apply to /v1/messages", async () => {
    mock.setFaults({ failNext: [{ status: 429, retryAfterSeconds: 2 }] });
    const limited = await call("/v1/messages", { body: baseBody });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "2");
    assert.equal(limited.json().error.type, "rate_limit_error");

    mock.setFaults({ errorRate: 1 });
    const failed = await call("/v1/messages", { body: baseBody });
    assert.equal(failed.status, 500);
    assert.equal(failed.json().error.type, "api_error");
    mock.setFaults({ errorRate: 0, rateLimitRate: 1, retryAfterSeconds: 3 });
    const rated = await call("/v1/messages/count_tokens", { body: { model, messages: baseBody.messages } });
    assert.equal(rated.status, 429);
    assert.equal(rated.headers.get("retry-after"), "3");
    mock.setFaults({ rateLimitRate: 0, overloadedRate: 1 });
    const overloaded = await call("/v1/messages", { body: baseBody });
    assert.equal(overloaded.status, 529);
    assert.equal(overloaded.json().error.type, "overloaded_error");
    await assert.rejects(
      client().messages.create(baseBody),
      (error: unknown) => error instanceof Anthropic.APIError && error.status === 529,
    );
  });

  test("latencyMs delays the answer; drop cuts the connection; hang never answers", async () => {
    mock.setFaults({ latencyMs: 120 });
    const started = performance.now();
    assert.equal((await call("/v1/messages", { body: baseBody })).status, 200);
    assert.ok(performance.now() - started >= 115);

    mock.setFaults({ latencyMs: 0, failNext: [{ drop: true }] });
    await assert.rejects(client().messages.create(baseBody), Anthropic.APIConnectionError);
    assert.equal((await call("/v1/messages", { body: baseBody })).status, 200);

    mock.setFaults({ hang: true });
    await assert.rejects(call("/v1/messages", { body: baseBody, signal: AbortSignal.timeout(100) }));
    await waitFor(() => mock.stats().clientDisconnects === 1 && mock.stats().inFlight === 0);
  });

  test("a broken stream sends N events, then cuts the connection without message_stop", async () => {
    mock.setFaults({ brokenStreamAfterChunks: 4 });
    const response = await fetch(`${root}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": apiKey, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ ...baseBody, stream: true }),
    });
    assert.equal(response.status, 200);
    const events = sseEvents(await readUntilCut(response));
    assert.deepEqual(
      events.map((event) => event.event),
      ["message_start", "content_block_start", "ping", "content_block_delta"],
    );
    assert.equal(mock.stats().clientDisconnects, 0, "the mock's own cut is not a client disconnect");

    await assert.rejects(client().messages.stream(baseBody).finalMessage(), Anthropic.APIConnectionError);
  });

  test("streamErrorAfterEvents: an error event mid-stream, then the response ends normally", async () => {
    mock.setFaults({ failNext: [{ streamErrorAfterEvents: 3 }] });
    const answer = await call("/v1/messages", { body: { ...baseBody, stream: true } });
    assert.equal(answer.status, 200);
    const events = sseEvents(answer.text);
    assert.deepEqual(
      events.map((event) => event.event),
      ["message_start", "content_block_start", "ping", "error"],
    );
    assert.equal(events[3]?.rawData, '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');

    mock.setFaults({ failNext: [{ streamErrorAfterEvents: 5 }] });
    const stream = await client().messages.create({ ...baseBody, stream: true });
    const seen: string[] = [];
    await assert.rejects(
      async () => {
        for await (const event of stream) seen.push(event.type);
      },
      (error: unknown) => error instanceof Anthropic.APIError && error.type === "overloaded_error",
    );
    assert.deepEqual(seen, ["message_start", "content_block_start", "content_block_delta", "content_block_delta"]);
    // A JSON request consumes the scripted fault and is answered normally.
    mock.setFaults({ failNext: [{ streamErrorAfterEvents: 1 }] });
    assert.equal((await call("/v1/messages", { body: baseBody })).status, 200);
  });

  test("streamChunkDelayMs paces the events; a client leaving mid-stream is a disconnect", async () => {
    mock.setFaults({ streamChunkDelayMs: 30 });
    const controller = new AbortController();
    const response = await fetch(`${root}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": apiKey, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ ...baseBody, stream: true }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    const first = await reader?.read();
    const text = new TextDecoder().decode(first?.value);
    assert.equal(sseEvents(text).length, 1, "the first read holds the first event only");
    controller.abort();
    await waitFor(() => mock.stats().clientDisconnects === 1);
  });
});

describe("control endpoints and command line", () => {
  test("overloadedRate over /__faults; /__stats counts Anthropic's routes; /__reset", async () => {
    const control = (path: string, body?: unknown) =>
      fetch(`${root}${path}`, {
        method: body === undefined ? "GET" : "POST",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const set = await control("/__faults", { overloadedRate: 1 });
    assert.equal(set.status, 200);
    assert.equal(((await set.json()) as { overloadedRate: number }).overloadedRate, 1);
    assert.equal((await call("/v1/messages", { body: baseBody })).status, 529);
    assert.equal((await control("/__faults", { overloadedRate: 2 })).status, 400);
    assert.throws(() => mock.setFaults({ overloadedRate: -1 }), /overloadedRate/);
    assert.equal((await control("/__faults", { overloadedRate: 0 })).status, 200);

    await call("/v1/messages", { body: { ...baseBody, stream: true } });
    await call("/v1/messages/count_tokens", { body: { model, messages: baseBody.messages } });
    const stats = (await (await control("/__stats")).json()) as {
      requests: Record<string, number>;
      streams: number;
      injectedFaults: number;
    };
    assert.equal(stats.requests["POST /v1/messages"], 2);
    assert.equal(stats.requests["POST /v1/messages/count_tokens"], 1);
    assert.equal(stats.streams, 1);
    assert.equal(stats.injectedFaults, 1);

    assert.equal((await control("/__reset", {})).status, 200);
    assert.equal(mock.faults().overloadedRate, 0);
    assert.equal(mock.stats().totalRequests, 0);
  });

  test("--overloaded-rate", () => {
    assert.equal(parseMockUpstreamArgs(["--overloaded-rate", "0.25"]).overloadedRate, 0.25);
    assert.throws(() => parseMockUpstreamArgs(["--overloaded-rate", "2"]), /--overloaded-rate/);
  });
});
