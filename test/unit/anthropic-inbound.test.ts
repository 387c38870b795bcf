import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { APIError } from "@anthropic-ai/sdk/core/error";
import { Stream } from "@anthropic-ai/sdk/core/streaming";
import type { Message, RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { AppError } from "../../src/errors.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Usage,
} from "../../src/providers/provider.ts";
import { fromAnthropicRequest } from "../../src/requests/anthropic/request.ts";
import { toAnthropicMessage } from "../../src/requests/anthropic/response.ts";
import {
  createEventTranslator,
  type EventTranslatorOptions,
  formatSse,
  type StreamEvent,
} from "../../src/requests/anthropic/stream.ts";
import { completionToChunks } from "../../src/requests/chat-stream.ts";

/**
 * The Anthropic entry point's translation, table by table: Anthropic request → internal OpenAI request, OpenAI answer
 * → Anthropic Message, OpenAI chunks → Anthropic's events (each stream checked against the exact event list), and
 * Anthropic's own SDK reading what we send.
 */

type Json = Record<string, unknown>;

const user = (content: unknown) => ({ role: "user", content });
const assistant = (content: unknown) => ({ role: "assistant", content });
const body = (fields: Json = {}): Json => ({ model: "gpt-4o", max_tokens: 256, messages: [user("Hi")], ...fields });
const translated = (fields: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: "gpt-4o",
  max_tokens: 256,
  messages: [{ role: "user", content: "Hi" }],
  ...fields,
});
const ephemeral = { type: "ephemeral" };
const png = { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" };
const weatherTool = { name: "get_weather", description: "Weather of a city", input_schema: { type: "object" } };
const weatherFunction = {
  type: "function",
  function: { name: "get_weather", description: "Weather of a city", parameters: { type: "object" } },
};

describe("Anthropic request → OpenAI request", () => {
  const cases: Array<{ name: string; body: Json; expected: ChatCompletionRequest }> = [
    { name: "a string message", body: body(), expected: translated() },
    {
      name: "system string → a leading system message",
      body: body({ system: "Be brief." }),
      expected: translated({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
        ],
      }),
    },
    {
      name: "one system text block → a string",
      body: body({ system: [{ type: "text", text: "Be brief." }] }),
      expected: translated({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
        ],
      }),
    },
    {
      name: "system blocks with cache_control → text parts keeping it",
      body: body({
        system: [
          { type: "text", text: "A" },
          { type: "text", text: "B", cache_control: ephemeral },
        ],
      }),
      expected: translated({
        messages: [
          {
            role: "system",
            content: [
              { type: "text", text: "A" },
              { type: "text", text: "B", cache_control: ephemeral },
            ],
          },
          { role: "user", content: "Hi" },
        ],
      }),
    },
    {
      name: "several plain system blocks stay parts (no separator invented)",
      body: body({
        system: [
          { type: "text", text: "A" },
          { type: "text", text: "B" },
        ],
      }),
      expected: translated({
        messages: [
          {
            role: "system",
            content: [
              { type: "text", text: "A" },
              { type: "text", text: "B" },
            ],
          },
          { role: "user", content: "Hi" },
        ],
      }),
    },
    {
      name: "an empty system is left out",
      body: body({ system: "" }),
      expected: translated(),
    },
    {
      name: "a mid-conversation system message stays in place",
      body: body({ messages: [user("Hi"), { role: "system", content: [{ type: "text", text: "Mode: plan." }] }] }),
      expected: translated({
        messages: [
          { role: "user", content: "Hi" },
          { role: "system", content: "Mode: plan." },
        ],
      }),
    },
    {
      name: "user text blocks → text parts keeping cache_control; citations: null is dropped",
      body: body({
        messages: [
          user([
            { type: "text", text: "A", citations: null },
            { type: "text", text: "B", cache_control: ephemeral },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "A" },
              { type: "text", text: "B", cache_control: ephemeral },
            ],
          },
        ],
      }),
    },
    {
      name: "base64 image → image_url with a data URL",
      body: body({ messages: [user([{ type: "image", source: png }])] }),
      expected: translated({
        messages: [
          { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] },
        ],
      }),
    },
    {
      name: "url image → image_url with that URL, cache_control kept",
      body: body({
        messages: [
          user([{ type: "image", source: { type: "url", url: "https://x.test/a.png" }, cache_control: ephemeral }]),
        ],
      }),
      expected: translated({
        messages: [
          {
            role: "user",
            content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" }, cache_control: ephemeral }],
          },
        ],
      }),
    },
    {
      name: "a Files API image, a document and a search result → anthropic parts, unchanged",
      body: body({
        messages: [
          user([
            { type: "image", source: { type: "file", file_id: "file_1" } },
            { type: "document", source: { type: "text", media_type: "text/plain", data: "Doc" }, title: "T" },
            { type: "search_result", source: "https://x.test", title: "R", content: [{ type: "text", text: "r" }] },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          {
            role: "user",
            content: [
              { type: "anthropic", block: { type: "image", source: { type: "file", file_id: "file_1" } } },
              {
                type: "anthropic",
                block: {
                  type: "document",
                  source: { type: "text", media_type: "text/plain", data: "Doc" },
                  title: "T",
                },
              },
              {
                type: "anthropic",
                block: {
                  type: "search_result",
                  source: "https://x.test",
                  title: "R",
                  content: [{ type: "text", text: "r" }],
                },
              },
            ],
          },
        ],
      }),
    },
    {
      name: "tool_result blocks → tool messages, in order, before the rest of the turn (text first in the input)",
      body: body({
        messages: [
          user("Weather?"),
          assistant([
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Rome" } },
          ]),
          user([
            { type: "text", text: "And New York?" },
            { type: "tool_result", tool_use_id: "toolu_1", content: "18°C" },
            { type: "tool_result", tool_use_id: "toolu_2", content: [{ type: "text", text: "24°C" }] },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          { role: "user", content: "Weather?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
              { id: "toolu_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
            ],
          },
          { role: "tool", tool_call_id: "toolu_1", content: "18°C" },
          { role: "tool", tool_call_id: "toolu_2", content: [{ type: "text", text: "24°C" }] },
          { role: "user", content: [{ type: "text", text: "And New York?" }] },
        ],
      }),
    },
    {
      name: "tool_result: text and image parts, is_error and cache_control kept, no or empty content → empty string",
      body: body({
        messages: [
          user([
            {
              type: "tool_result",
              tool_use_id: "toolu_1",
              is_error: true,
              cache_control: ephemeral,
              content: [
                { type: "text", text: "failed" },
                { type: "image", source: png },
              ],
            },
            { type: "tool_result", tool_use_id: "toolu_2", is_error: false },
            { type: "tool_result", tool_use_id: "toolu_3", content: [] },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          {
            role: "tool",
            tool_call_id: "toolu_1",
            content: [
              { type: "text", text: "failed" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            ],
            is_error: true,
            cache_control: ephemeral,
          },
          { role: "tool", tool_call_id: "toolu_2", content: "" },
          { role: "tool", tool_call_id: "toolu_3", content: "" },
        ],
      }),
    },
    {
      name: "assistant string → string content",
      body: body({ messages: [user("Hi"), assistant("Hello"), user("Bye")] }),
      expected: translated({
        messages: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello" },
          { role: "user", content: "Bye" },
        ],
      }),
    },
    {
      name: "assistant text and tool_use → string content and tool_calls (caller: direct, the default, dropped)",
      body: body({
        messages: [
          user("Hi"),
          assistant([
            { type: "text", text: "Checking.", citations: null },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: {}, caller: { type: "direct" } },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          { role: "user", content: "Hi" },
          {
            role: "assistant",
            content: "Checking.",
            tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
          },
        ],
      }),
    },
    {
      name: "assistant thinking and redacted thinking → thinking_blocks, unchanged and in order",
      body: body({
        messages: [
          user("Hi"),
          assistant([
            { type: "thinking", thinking: "Hmm.", signature: "sig1" },
            { type: "redacted_thinking", data: "opaque" },
            { type: "text", text: "Hello" },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          { role: "user", content: "Hi" },
          {
            role: "assistant",
            content: "Hello",
            thinking_blocks: [
              { type: "thinking", thinking: "Hmm.", signature: "sig1" },
              { type: "redacted_thinking", data: "opaque" },
            ],
          },
        ],
      }),
    },
    {
      name: "assistant server tool blocks → anthropic parts among the text parts, in place",
      body: body({
        messages: [
          user("News?"),
          assistant([
            { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: { query: "news" } },
            { type: "web_search_tool_result", tool_use_id: "srvtoolu_1", content: [] },
            { type: "text", text: "Nothing new." },
          ]),
        ],
      }),
      expected: translated({
        messages: [
          { role: "user", content: "News?" },
          {
            role: "assistant",
            content: [
              {
                type: "anthropic",
                block: { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: { query: "news" } },
              },
              { type: "anthropic", block: { type: "web_search_tool_result", tool_use_id: "srvtoolu_1", content: [] } },
              { type: "text", text: "Nothing new." },
            ],
          },
        ],
      }),
    },
    {
      name: "a final empty assistant message (a prefill of nothing) is left out",
      body: body({ messages: [user("Hi"), assistant([])] }),
      expected: translated(),
    },
    {
      name: "client tools → functions (cache_control kept, strict mapped, Anthropic-only keys under anthropic)",
      body: body({
        tools: [
          weatherTool,
          { ...weatherTool, name: "t2", type: "custom", strict: true, cache_control: ephemeral, defer_loading: true },
        ],
      }),
      expected: translated({
        tools: [
          weatherFunction,
          {
            type: "function",
            function: { ...weatherFunction.function, name: "t2", strict: true },
            cache_control: ephemeral,
            anthropic: { defer_loading: true },
          },
        ],
      }),
    },
    {
      name: "server tools → anthropic.tools",
      body: body({ tools: [weatherTool, { type: "web_search_20250305", name: "web_search", max_uses: 3 }] }),
      expected: translated({
        tools: [weatherFunction],
        anthropic: { tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }] },
      }),
    },
    ...(
      [
        [{ type: "auto" }, { tool_choice: "auto" }],
        [{ type: "any" }, { tool_choice: "required" }],
        [{ type: "none" }, { tool_choice: "none" }],
        [
          { type: "tool", name: "get_weather" },
          { tool_choice: { type: "function", function: { name: "get_weather" } } },
        ],
        [
          { type: "auto", disable_parallel_tool_use: true },
          { tool_choice: "auto", parallel_tool_calls: false },
        ],
        [{ type: "any", disable_parallel_tool_use: false }, { tool_choice: "required" }],
      ] as const
    ).map(([choice, fields]) => ({
      name: `tool_choice ${JSON.stringify(choice)}`,
      body: body({ tools: [weatherTool], tool_choice: choice }),
      expected: translated({ tools: [weatherFunction], ...fields }),
    })),
    {
      name: "tool_choice with no function tool (OpenAI refuses it) → anthropic.tool_choice",
      body: body({ tools: [{ type: "web_search_20250305", name: "web_search" }], tool_choice: { type: "any" } }),
      expected: translated({
        anthropic: { tools: [{ type: "web_search_20250305", name: "web_search" }], tool_choice: { type: "any" } },
      }),
    },
    {
      name: "sampling, stop_sequences, metadata.user_id, stream and thinking",
      body: body({
        max_tokens: 1024,
        stop_sequences: ["END"],
        temperature: 0.2,
        top_p: 0.9,
        metadata: { user_id: "u1" },
        stream: true,
        thinking: { type: "enabled", budget_tokens: 2048 },
      }),
      expected: translated({
        max_tokens: 1024,
        stop: ["END"],
        temperature: 0.2,
        top_p: 0.9,
        user: "u1",
        stream: true,
        thinking: { type: "enabled", budget_tokens: 2048 },
      }),
    },
    {
      name: "metadata with more than user_id also goes whole to the extension",
      body: body({ metadata: { user_id: "u1", tag: "x" } }),
      expected: translated({ user: "u1", anthropic: { metadata: { user_id: "u1", tag: "x" } } }),
    },
    {
      name: "Anthropic-only fields → the anthropic extension, unchanged",
      body: body({
        top_k: 5,
        service_tier: "auto",
        container: "container_1",
        mcp_servers: [{ type: "url", url: "https://mcp.test", name: "m" }],
        context_management: { edits: [] },
        output_config: { effort: "low" },
        cache_control: ephemeral,
        speed: "fast",
      }),
      expected: translated({
        anthropic: {
          top_k: 5,
          service_tier: "auto",
          container: "container_1",
          mcp_servers: [{ type: "url", url: "https://mcp.test", name: "m" }],
          context_management: { edits: [] },
          output_config: { effort: "low" },
          cache_control: ephemeral,
          speed: "fast",
        },
      }),
    },
    {
      name: "max_tokens 0 (Anthropic's cache warming) passes",
      body: body({ max_tokens: 0 }),
      expected: translated({ max_tokens: 0 }),
    },
  ];
  for (const { name, body: given, expected } of cases) {
    test(name, () => assert.deepEqual(fromAnthropicRequest(given), expected));
  }

  test("a whole Claude Code turn (fixture)", () => {
    const fixture = JSON.parse(
      readFileSync(new URL("../fixtures/anthropic-inbound/claude-code-turn.json", import.meta.url), "utf8"),
    ) as { request: Json; expected: ChatCompletionRequest };
    assert.deepEqual(fromAnthropicRequest(fixture.request), fixture.expected);
  });
});

describe("Anthropic request validation: a 400 naming the field", () => {
  const image = (source: Json) => body({ messages: [user("Hi"), assistant("Ok"), user([{ type: "image", source }])] });
  const block = (value: unknown) => body({ messages: [user([value])] });
  const previous = (value: unknown) => body({ messages: [user("Hi"), assistant([value])] });
  const cases: Array<[path: string, given: unknown]> = [
    ["", "not an object"],
    ["", [body()]],
    ["model", { max_tokens: 1, messages: [user("Hi")] }],
    ["model", body({ model: 4 })],
    ["model", body({ model: "" })],
    ["max_tokens", { model: "m", messages: [user("Hi")] }],
    ["max_tokens", body({ max_tokens: 1.5 })],
    ["max_tokens", body({ max_tokens: -1 })],
    ["max_tokens", body({ max_tokens: "10" })],
    ["messages", { model: "m", max_tokens: 1 }],
    ["messages", body({ messages: [] })],
    ["messages", body({ messages: "Hi" })],
    ["messages.0", body({ messages: ["Hi"] })],
    ["messages.0.role", body({ messages: [{ content: "Hi" }] })],
    ["messages.0.role", body({ messages: [{ role: "bot", content: "Hi" }] })],
    ["messages.0.content", body({ messages: [{ role: "user" }] })],
    ["messages.0.content", body({ messages: [{ role: "user", content: 5 }] })],
    ["messages.0", body({ messages: [user("")] })],
    ["messages.0", body({ messages: [user([]), assistant("Hi")] })],
    ["messages.1", body({ messages: [user("Hi"), { role: "system", content: [] }, user("Go")] })],
    ["messages.0.content.0", block("text")],
    ["messages.0.content.0.type", block({ text: "Hi" })],
    ["messages.0.content.0.text", block({ type: "text" })],
    ["messages.2.content.0.source", image(undefined as unknown as Json)],
    ["messages.2.content.0.source.type", image({ data: "x" })],
    ["messages.2.content.0.source.media_type", image({ type: "base64", data: "x" })],
    ["messages.2.content.0.source.data", image({ type: "base64", media_type: "image/png" })],
    ["messages.2.content.0.source.url", image({ type: "url" })],
    ["messages.0.content.0.tool_use_id", block({ type: "tool_result", content: "x" })],
    ["messages.0.content.0.is_error", block({ type: "tool_result", tool_use_id: "t", is_error: "yes" })],
    ["messages.0.content.0.content", block({ type: "tool_result", tool_use_id: "t", content: 5 })],
    [
      "messages.0.content.0.content.1.text",
      block({ type: "tool_result", tool_use_id: "t", content: [{ type: "text", text: "a" }, { type: "text" }] }),
    ],
    ["messages.1.content.0.id", previous({ type: "tool_use", name: "f", input: {} })],
    ["messages.1.content.0.name", previous({ type: "tool_use", id: "t", input: {} })],
    ["messages.1.content.0.input", previous({ type: "tool_use", id: "t", name: "f" })],
    ["messages.1.content.0.input", previous({ type: "tool_use", id: "t", name: "f", input: "{}" })],
    ["messages.1.content.0.signature", previous({ type: "thinking", thinking: "x" })],
    ["messages.1.content.0.data", previous({ type: "redacted_thinking" })],
    ["system", body({ system: 5 })],
    ["system.0.type", body({ system: [{ type: "image", source: png }] })],
    ["system.0.text", body({ system: [{ type: "text" }] })],
    ["tools", body({ tools: "get_weather" })],
    ["tools.0", body({ tools: ["get_weather"] })],
    ["tools.0.name", body({ tools: [{ input_schema: { type: "object" } }] })],
    ["tools.1.input_schema", body({ tools: [weatherTool, { name: "f" }] })],
    ["tools.0.description", body({ tools: [{ ...weatherTool, description: 1 }] })],
    ["tool_choice", body({ tools: [weatherTool], tool_choice: "auto" })],
    ["tool_choice.type", body({ tools: [weatherTool], tool_choice: { type: "some" } })],
    ["tool_choice.name", body({ tools: [weatherTool], tool_choice: { type: "tool" } })],
    [
      "tool_choice.disable_parallel_tool_use",
      body({ tools: [weatherTool], tool_choice: { type: "auto", disable_parallel_tool_use: 1 } }),
    ],
    ["stop_sequences", body({ stop_sequences: "END" })],
    ["stop_sequences.1", body({ stop_sequences: ["END", 2] })],
    ["temperature", body({ temperature: "hot" })],
    ["top_p", body({ top_p: "high" })],
    ["stream", body({ stream: "yes" })],
    ["metadata", body({ metadata: "u1" })],
    ["metadata.user_id", body({ metadata: { user_id: 5 } })],
    ["thinking", body({ thinking: "on" })],
  ];
  for (const [path, given] of cases) {
    test(`${path || "(body)"}: ${JSON.stringify(given).slice(0, 90)}`, () => {
      assert.throws(
        () => fromAnthropicRequest(given),
        (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.status, 400);
          assert.equal(error.code, "invalid_request");
          assert.equal(error.param, path);
          assert.equal(error.errors?.[0]?.path, path);
          assert.ok(error.message.startsWith(path ? `${path}: ` : ""), error.message);
          return true;
        },
      );
    });
  }
});

const completion = (message: Json, finish: string | null = "stop", usage?: Usage): ChatCompletion => ({
  id: "chatcmpl-abc123",
  object: "chat.completion",
  created: 1,
  model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, message: { role: "assistant", content: null, ...message }, finish_reason: finish }],
  ...(usage ? { usage } : {}),
});
const usage = (fields: Partial<Usage> = {}): Usage => ({
  prompt_tokens: 10,
  completion_tokens: 5,
  total_tokens: 15,
  ...fields,
});
const anthropicUsage = (fields: Json = {}) => ({
  input_tokens: 0,
  output_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
  output_tokens_details: null,
  cache_creation: null,
  inference_geo: null,
  server_tool_use: null,
  service_tier: null,
  speed: null,
  ...fields,
});
const message = (fields: Partial<Message>): Message =>
  ({
    id: "msg_abc123",
    type: "message",
    role: "assistant",
    model: "claude-sonnet-5",
    content: [],
    stop_reason: "end_turn",
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: anthropicUsage(),
    ...fields,
  }) as Message;
const textBlock = (text: string) => ({ type: "text" as const, text, citations: null });
const toolUse = (id: string, input: unknown, name = "get_weather") => ({
  type: "tool_use" as const,
  id,
  name,
  input,
  caller: { type: "direct" as const },
});
const call = (id: string, args: string, name = "get_weather") => ({
  id,
  type: "function",
  function: { name, arguments: args },
});

describe("OpenAI answer → Anthropic Message", () => {
  const cases: Array<{ name: string; completion: ChatCompletion; expected: Message }> = [
    {
      name: "text: id from the completion's, the caller's model name, usage",
      completion: completion({ content: "Hello" }, "stop", usage()),
      expected: message({
        content: [textBlock("Hello")],
        usage: anthropicUsage({ input_tokens: 10, output_tokens: 5 }),
      }),
    },
    {
      name: "tool calls → tool_use blocks after the text; no empty text block",
      completion: completion(
        { content: "", tool_calls: [call("call_1", '{"city":"Paris"}'), call("call_2", "")] },
        "tool_calls",
      ),
      expected: message({
        content: [toolUse("call_1", { city: "Paris" }), toolUse("call_2", {})],
        stop_reason: "tool_use",
      }),
    },
    {
      name: "a turn with tool calls that says stop is tool_use",
      completion: completion({ content: "Let me check.", tool_calls: [call("call_1", "{}")] }, "stop"),
      expected: message({ content: [textBlock("Let me check."), toolUse("call_1", {})], stop_reason: "tool_use" }),
    },
    {
      name: "cut-off arguments (length): the block stays, input {}; max_tokens",
      completion: completion({ tool_calls: [call("call_1", '{"path":"a.txt","content":"hal')] }, "length"),
      expected: message({ content: [toolUse("call_1", {})], stop_reason: "max_tokens" }),
    },
    {
      name: "arguments that are JSON but not an object → input {}",
      completion: completion({ tool_calls: [call("call_1", "[1,2]")] }, "tool_calls"),
      expected: message({ content: [toolUse("call_1", {})], stop_reason: "tool_use" }),
    },
    ...(
      [
        ["length", "max_tokens"],
        ["content_filter", "refusal"],
        ["function_call", "tool_use"],
        [null, "end_turn"],
        ["something_new", "end_turn"],
      ] as const
    ).map(([finish, stop]) => ({
      name: `finish_reason ${finish} → ${stop}`,
      completion: completion({ content: "x" }, finish),
      expected: message({ content: [textBlock("x")], stop_reason: stop }),
    })),
    {
      name: "thinking_blocks first, unchanged, then text, then tool_use",
      completion: completion(
        {
          content: "Sunny.",
          tool_calls: [call("toolu_9", '{"city":"Oslo"}')],
          thinking_blocks: [
            { type: "thinking", thinking: "Let me see.", signature: "sig" },
            { type: "redacted_thinking", data: "opaque" },
          ],
        },
        "tool_calls",
      ),
      expected: message({
        content: [
          { type: "thinking", thinking: "Let me see.", signature: "sig" },
          { type: "redacted_thinking", data: "opaque" },
          textBlock("Sunny."),
          toolUse("toolu_9", { city: "Oslo" }),
        ],
        stop_reason: "tool_use",
      }),
    },
    {
      name: "reasoning_content (no thinking_blocks) → one unsigned thinking block",
      completion: completion({ content: "4", reasoning_content: "2+2" }),
      expected: message({ content: [{ type: "thinking", thinking: "2+2", signature: "" }, textBlock("4")] }),
    },
    {
      name: "a refusal → its text",
      completion: completion({ content: null, refusal: "I can't help with that." }),
      expected: message({ content: [textBlock("I can't help with that.")] }),
    },
    {
      name: "content parts with anthropic blocks keep them in place",
      completion: completion({
        content: [
          { type: "anthropic", block: { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} } },
          { type: "text", text: "Found it." },
        ],
      }),
      expected: message({
        content: [
          { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} },
          textBlock("Found it."),
        ] as Message["content"],
      }),
    },
    {
      name: "cached tokens (OpenAI's details) and reasoning tokens",
      completion: completion(
        { content: "x" },
        "stop",
        usage({
          prompt_tokens: 100,
          completion_tokens: 30,
          prompt_tokens_details: { cached_tokens: 60, cache_write_tokens: 10 },
          completion_tokens_details: { reasoning_tokens: 20 },
        }),
      ),
      expected: message({
        content: [textBlock("x")],
        usage: anthropicUsage({
          input_tokens: 30,
          output_tokens: 30,
          cache_read_input_tokens: 60,
          cache_creation_input_tokens: 10,
          output_tokens_details: { thinking_tokens: 20 },
        }),
      }),
    },
    {
      name: "cache counts from an Anthropic answer's extension fields win",
      completion: completion(
        { content: "x" },
        "stop",
        usage({
          prompt_tokens: 100,
          cache_read_input_tokens: 70,
          cache_creation_input_tokens: 20,
          prompt_tokens_details: { cached_tokens: 1 },
        }),
      ),
      expected: message({
        content: [textBlock("x")],
        usage: anthropicUsage({
          input_tokens: 10,
          output_tokens: 5,
          cache_read_input_tokens: 70,
          cache_creation_input_tokens: 20,
        }),
      }),
    },
    {
      name: "an id already msg_… stays; no choices → no content",
      completion: { ...completion({}), id: "msg_01XYZ", choices: [] },
      expected: message({ id: "msg_01XYZ" }),
    },
  ];
  for (const { name, completion: given, expected } of cases) {
    test(name, () => assert.deepEqual(toAnthropicMessage(given, { model: "claude-sonnet-5" }), expected));
  }

  test("round trip: the answer's blocks, sent back as the assistant turn, give the same assistant message", () => {
    const answer = completion({
      content: "Checking both.",
      tool_calls: [call("call_1", '{"city":"Paris"}'), call("call_2", '{"city":"Rome"}')],
      thinking_blocks: [{ type: "thinking", thinking: "Two cities.", signature: "sig" }],
    });
    const sent = toAnthropicMessage(answer, { model: "gpt-4o" });
    const back = fromAnthropicRequest(body({ messages: [user("Weather?"), assistant(sent.content)] }));
    const { role, content, tool_calls, thinking_blocks } = answer.choices[0]!.message;
    assert.deepEqual(back.messages[1], { role, content, tool_calls, thinking_blocks });
  });
});

type Delta = ChatCompletionChunk["choices"][number]["delta"];
const chunk = (delta: Delta, finish: string | null = null): ChatCompletionChunk => ({
  id: "chatcmpl-abc123",
  object: "chat.completion.chunk",
  created: 1,
  model: "gpt-4o",
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const usageChunk = (given: Usage): ChatCompletionChunk => ({ ...chunk({}), choices: [], usage: given });
const toolDelta = (index: number, fields: { id?: string; name?: string; arguments?: string }): Delta => ({
  tool_calls: [
    {
      index,
      ...(fields.id ? { id: fields.id, type: "function" } : {}),
      function: {
        ...(fields.name ? { name: fields.name } : {}),
        ...(fields.arguments !== undefined ? { arguments: fields.arguments } : {}),
      },
    },
  ],
});

const streamOptions: EventTranslatorOptions = { model: "claude-sonnet-5", messageId: "msg_abc123" };
function translate(chunks: ChatCompletionChunk[], options: Partial<EventTranslatorOptions> = {}): StreamEvent[] {
  const translator = createEventTranslator({ ...streamOptions, ...options });
  return [...chunks.flatMap((each) => translator.push(each)), ...translator.end()];
}

const messageStart = (usageFields: Json = {}): StreamEvent => ({
  type: "message_start",
  message: message({ stop_reason: null, usage: anthropicUsage(usageFields) }),
});
const ping: StreamEvent = { type: "ping" };
const blockStart = (index: number, block: Json) => ({ type: "content_block_start", index, content_block: block });
const textStart = (index: number) => blockStart(index, { type: "text", text: "", citations: null });
const thinkingStart = (index: number) => blockStart(index, { type: "thinking", thinking: "", signature: "" });
const toolStart = (index: number, id: string, name = "get_weather") =>
  blockStart(index, { type: "tool_use", id, name, input: {}, caller: { type: "direct" } });
const blockDelta = (index: number, delta: Json) => ({ type: "content_block_delta", index, delta });
const text = (index: number, value: string) => blockDelta(index, { type: "text_delta", text: value });
const json = (index: number, value: string) => blockDelta(index, { type: "input_json_delta", partial_json: value });
const thinking = (index: number, value: string) => blockDelta(index, { type: "thinking_delta", thinking: value });
const signature = (index: number, value: string) => blockDelta(index, { type: "signature_delta", signature: value });
const blockStop = (index: number) => ({ type: "content_block_stop", index });
const messageDelta = (stopReason: string, usageFields: Json | null) => ({
  type: "message_delta",
  delta: { stop_reason: stopReason, stop_sequence: null, stop_details: null, container: null },
  usage: usageFields
    ? {
        input_tokens: 0,
        output_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
        output_tokens_details: null,
        server_tool_use: null,
        ...usageFields,
      }
    : {
        input_tokens: null,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: null,
        output_tokens: 0,
        output_tokens_details: null,
        server_tool_use: null,
      },
});
const messageStop: StreamEvent = { type: "message_stop" };

/**
 * Anthropic's event grammar, as its clients check it: message_start first; blocks started in index order, never two
 * open, each delta for the open block and of its kind; one ping, right after the first block's start; message_delta
 * once every block is closed; message_stop last. An error event may end the stream anywhere.
 */
function assertAnthropicOrder(events: StreamEvent[]): void {
  const deltaKinds: Record<string, string> = {
    text_delta: "text",
    input_json_delta: "tool_use",
    thinking_delta: "thinking",
    signature_delta: "thinking",
  };
  const types = events.map((event) => event.type);
  const last = events.at(-1)?.type;
  if (last === "error") {
    assert.equal(types.indexOf("error"), events.length - 1, "the error event ends the stream");
    return;
  }
  assert.equal(types[0], "message_start");
  assert.equal(last, "message_stop");
  assert.equal(types.filter((type) => type === "ping").length, 1, "one ping");
  assert.equal(types.filter((type) => type === "message_delta").length, 1, "one message_delta");
  let open: { index: number; kind: string } | undefined;
  let started = 0;
  events.slice(1, -1).forEach((event, position) => {
    const previous = events[position];
    switch (event.type) {
      case "content_block_start":
        assert.equal(open, undefined, "never two blocks open");
        assert.equal(event.index, started++);
        open = { index: event.index, kind: event.content_block.type };
        break;
      case "ping":
        assert.ok(previous?.type === "content_block_start" && previous.index === 0, "ping after the first start");
        break;
      case "content_block_delta":
        assert.equal(event.index, open?.index, "a delta for the open block");
        assert.equal(deltaKinds[event.delta.type], open?.kind, "a delta of the block's kind");
        break;
      case "content_block_stop":
        assert.equal(event.index, open?.index, "a stop for the open block");
        open = undefined;
        break;
      case "message_delta":
        assert.equal(open, undefined, "message_delta once the blocks are closed");
        assert.ok(started > 0, "at least one block");
        assert.equal(events[position + 2]?.type, "message_stop");
        break;
      default:
        assert.fail(`unexpected ${event.type} at ${position + 1}`);
    }
  });
}

describe("OpenAI chunks → Anthropic events", () => {
  const cases: Array<{
    name: string;
    chunks: ChatCompletionChunk[];
    options?: Partial<EventTranslatorOptions>;
    expected: unknown[];
  }> = [
    {
      name: "a text stream (the opening empty content starts no block)",
      chunks: [
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Hel" }),
        chunk({ content: "lo" }),
        chunk({}, "stop"),
        usageChunk(usage({ prompt_tokens: 12, completion_tokens: 2 })),
      ],
      expected: [
        messageStart(),
        textStart(0),
        ping,
        text(0, "Hel"),
        text(0, "lo"),
        blockStop(0),
        messageDelta("end_turn", { input_tokens: 12, output_tokens: 2 }),
        messageStop,
      ],
    },
    {
      name: "text then two tool calls whose arguments arrive in pieces",
      chunks: [
        chunk({ role: "assistant", content: "Checking." }),
        chunk(toolDelta(0, { id: "call_1", name: "get_weather", arguments: "" })),
        chunk(toolDelta(0, { arguments: '{"city":' })),
        chunk(toolDelta(0, { arguments: '"Paris"}' })),
        chunk(toolDelta(1, { id: "call_2", name: "get_time", arguments: '{"tz":' })),
        chunk(toolDelta(1, { arguments: '"CET"}' })),
        chunk({}, "tool_calls"),
        usageChunk(usage({ prompt_tokens: 40, completion_tokens: 20 })),
      ],
      expected: [
        messageStart(),
        textStart(0),
        ping,
        text(0, "Checking."),
        blockStop(0),
        toolStart(1, "call_1"),
        json(1, '{"city":'),
        json(1, '"Paris"}'),
        blockStop(1),
        toolStart(2, "call_2", "get_time"),
        json(2, '{"tz":'),
        json(2, '"CET"}'),
        blockStop(2),
        messageDelta("tool_use", { input_tokens: 40, output_tokens: 20 }),
        messageStop,
      ],
    },
    {
      name: "a thinking stream with a signature, a redacted block, then text",
      chunks: [
        chunk({ role: "assistant", reasoning_content: "Let me " }),
        chunk({ reasoning_content: "think." }),
        chunk({ thinking_blocks: [{ type: "thinking", signature: "sig_1" }] }),
        chunk({ thinking_blocks: [{ type: "redacted_thinking", data: "opaque" }] }),
        chunk({ content: "Done." }),
        chunk({}, "stop"),
        usageChunk(usage({ completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 6 } })),
      ],
      expected: [
        messageStart(),
        thinkingStart(0),
        ping,
        thinking(0, "Let me "),
        thinking(0, "think."),
        signature(0, "sig_1"),
        blockStop(0),
        blockStart(1, { type: "redacted_thinking", data: "opaque" }),
        blockStop(1),
        textStart(2),
        text(2, "Done."),
        blockStop(2),
        messageDelta("end_turn", { input_tokens: 10, output_tokens: 9, output_tokens_details: { thinking_tokens: 6 } }),
        messageStop,
      ],
    },
    {
      name: "thinking after a signature is a new block; a signature without text starts its own",
      chunks: [
        chunk({ thinking_blocks: [{ type: "thinking", signature: "sig_a" }] }),
        chunk({ reasoning_content: "More." }),
        chunk({ thinking_blocks: [{ type: "thinking", thinking: "More.", signature: "sig_b" }] }),
        chunk({}, "stop"),
        usageChunk(usage()),
      ],
      expected: [
        messageStart(),
        thinkingStart(0),
        ping,
        signature(0, "sig_a"),
        blockStop(0),
        thinkingStart(1),
        thinking(1, "More."),
        signature(1, "sig_b"),
        blockStop(1),
        messageDelta("end_turn", { input_tokens: 10, output_tokens: 5 }),
        messageStop,
      ],
    },
    {
      name: "cached prompt tokens: message_delta tells input and cache reads",
      chunks: [
        chunk({ content: "Hi" }, "stop"),
        usageChunk(usage({ prompt_tokens: 1000, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 900 } })),
      ],
      expected: [
        messageStart(),
        textStart(0),
        ping,
        text(0, "Hi"),
        blockStop(0),
        messageDelta("end_turn", { input_tokens: 100, output_tokens: 3, cache_read_input_tokens: 900 }),
        messageStop,
      ],
    },
    {
      name: "an empty stream: one empty text block, as Anthropic sends",
      chunks: [],
      expected: [messageStart(), textStart(0), ping, blockStop(0), messageDelta("end_turn", null), messageStop],
    },
    {
      name: "no content, then finish and usage",
      chunks: [
        chunk({ role: "assistant", content: "" }),
        chunk({}, "length"),
        usageChunk(usage({ completion_tokens: 0 })),
      ],
      expected: [
        messageStart(),
        textStart(0),
        ping,
        blockStop(0),
        messageDelta("max_tokens", { input_tokens: 10, output_tokens: 0 }),
        messageStop,
      ],
    },
    {
      name: "a tool-only turn that finishes with stop is tool_use; a tool without arguments has no delta",
      chunks: [
        chunk(toolDelta(0, { id: "call_1", name: "list_files", arguments: "" })),
        chunk({}, "stop"),
        usageChunk(usage()),
      ],
      expected: [
        messageStart(),
        toolStart(0, "call_1", "list_files"),
        ping,
        blockStop(0),
        messageDelta("tool_use", { input_tokens: 10, output_tokens: 5 }),
        messageStop,
      ],
    },
    {
      name: "two whole tool calls in one chunk; a second call at index 0 with a new id is a new block",
      chunks: [
        chunk({
          tool_calls: [
            { index: 0, id: "call_1", type: "function", function: { name: "a", arguments: "{}" } },
            { index: 1, id: "call_2", type: "function", function: { name: "b", arguments: "{}" } },
          ],
        }),
        chunk(toolDelta(0, { id: "call_3", name: "c", arguments: "{}" })),
        chunk({}, "tool_calls"),
        usageChunk(usage()),
      ],
      expected: [
        messageStart(),
        toolStart(0, "call_1", "a"),
        ping,
        json(0, "{}"),
        blockStop(0),
        toolStart(1, "call_2", "b"),
        json(1, "{}"),
        blockStop(1),
        toolStart(2, "call_3", "c"),
        json(2, "{}"),
        blockStop(2),
        messageDelta("tool_use", { input_tokens: 10, output_tokens: 5 }),
        messageStop,
      ],
    },
    {
      name: "usage on the finish chunk itself ends the message there",
      chunks: [chunk({ content: "A" }), { ...chunk({}, "stop"), usage: usage() }],
      expected: [
        messageStart(),
        textStart(0),
        ping,
        text(0, "A"),
        blockStop(0),
        messageDelta("end_turn", { input_tokens: 10, output_tokens: 5 }),
        messageStop,
      ],
    },
    {
      name: "a first chunk with usage (an Anthropic upstream) gives message_start its input tokens, and does not end it",
      chunks: [
        {
          ...chunk({ role: "assistant" }),
          usage: usage({ prompt_tokens: 50, completion_tokens: 1, cache_read_input_tokens: 40 }),
        },
        chunk({ content: "A" }),
        chunk({}, "stop"),
        usageChunk(usage({ prompt_tokens: 50, completion_tokens: 7, cache_read_input_tokens: 40 })),
      ],
      expected: [
        messageStart({ input_tokens: 10, cache_read_input_tokens: 40 }),
        textStart(0),
        ping,
        text(0, "A"),
        blockStop(0),
        messageDelta("end_turn", { input_tokens: 10, output_tokens: 7, cache_read_input_tokens: 40 }),
        messageStop,
      ],
    },
    {
      name: "the caller's estimate of the prompt for message_start",
      chunks: [],
      options: { inputTokens: 321 },
      expected: [
        messageStart({ input_tokens: 321 }),
        textStart(0),
        ping,
        blockStop(0),
        messageDelta("end_turn", null),
        messageStop,
      ],
    },
    {
      name: "a refusal streams as text; content_filter → refusal",
      chunks: [chunk({ refusal: "I can't." }), chunk({}, "content_filter"), usageChunk(usage())],
      expected: [
        messageStart(),
        textStart(0),
        ping,
        text(0, "I can't."),
        blockStop(0),
        messageDelta("refusal", { input_tokens: 10, output_tokens: 5 }),
        messageStop,
      ],
    },
  ];
  for (const { name, chunks, options, expected } of cases) {
    test(name, () => {
      const events = translate(chunks, options);
      assert.deepEqual(events, expected);
      assertAnthropicOrder(events);
    });
  }

  test("any chunk sequence (seeded random, 500 of them) gives events in Anthropic's order", () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pool: Array<(toolIndex: number) => ChatCompletionChunk> = [
      () => chunk({ content: "text " }),
      () => chunk({ role: "assistant", content: "" }),
      () => chunk({ reasoning_content: "hmm " }),
      () => chunk({ thinking_blocks: [{ type: "thinking", signature: "sig" }] }),
      () => chunk({ thinking_blocks: [{ type: "redacted_thinking", data: "x" }] }),
      () => chunk({ refusal: "no" }),
      (tool) => chunk(toolDelta(tool, { id: `call_${tool}`, name: "f", arguments: "{" })),
      (tool) => chunk(toolDelta(Math.max(0, tool - 1), { arguments: '"a":1' })),
      () => chunk({}, ["stop", "length", "tool_calls", "content_filter"][random(4)] ?? "stop"),
      () => usageChunk(usage()),
      () => ({ ...chunk({ content: "x" }, "stop"), usage: usage() }),
    ];
    for (let run = 0; run < 500; run++) {
      const translator = createEventTranslator(streamOptions);
      const events: StreamEvent[] = [];
      let tool = 0;
      for (let step = random(12); step > 0; step--) {
        const pick = random(pool.length);
        if (pick === 6) tool++;
        events.push(...translator.push(pool[pick]!(tool)));
      }
      events.push(...(random(5) === 0 ? translator.error("boom") : translator.end()));
      assertAnthropicOrder(events);
    }
  });

  test("the order check itself turns down what Anthropic's clients would", () => {
    const end = [messageDelta("end_turn", null), messageStop] as StreamEvent[];
    const wrong: Array<[string, unknown[]]> = [
      ["two blocks open", [messageStart(), textStart(0), ping, toolStart(1, "call_1"), blockStop(1), ...end]],
      ["no ping", [messageStart(), textStart(0), blockStop(0), ...end]],
      ["a delta of another kind", [messageStart(), textStart(0), ping, json(0, "{}"), blockStop(0), ...end]],
      ["no block", [messageStart(), ...end]],
      ["message_delta with a block open", [messageStart(), textStart(0), ping, ...end]],
      ["a skipped index", [messageStart(), textStart(1), ping, blockStop(1), ...end]],
    ];
    for (const [name, events] of wrong) {
      assert.throws(() => assertAnthropicOrder(events as StreamEvent[]), assert.AssertionError, name);
    }
  });

  test("the usage chunk after the finish chunk: nothing closes until it comes", () => {
    const translator = createEventTranslator(streamOptions);
    assert.deepEqual(translator.push(chunk({ content: "A" })), [messageStart(), textStart(0), ping, text(0, "A")]);
    assert.deepEqual(translator.push(chunk({}, "stop")), []);
    assert.deepEqual(translator.push(usageChunk(usage())), [
      blockStop(0),
      messageDelta("end_turn", { input_tokens: 10, output_tokens: 5 }),
      messageStop,
    ]);
    assert.deepEqual(translator.push(chunk({ content: "late" })), []);
    assert.deepEqual(translator.end(), []);
  });

  test("end() without a usage chunk closes the message with the caller's count, or nulls", () => {
    const counted = createEventTranslator(streamOptions);
    counted.push(chunk({ content: "A" }, "stop"));
    assert.deepEqual(counted.end(usage({ prompt_tokens: 7, completion_tokens: 1 })), [
      blockStop(0),
      messageDelta("end_turn", { input_tokens: 7, output_tokens: 1 }),
      messageStop,
    ]);
    const unknown = createEventTranslator(streamOptions);
    unknown.push(chunk(toolDelta(0, { id: "call_1", name: "f", arguments: "{" })));
    assert.deepEqual(unknown.end(), [blockStop(0), messageDelta("tool_use", null), messageStop]);
  });

  test("a failure part-way: one error event, then nothing", () => {
    const translator = createEventTranslator(streamOptions);
    translator.push(chunk({ content: "A" }));
    assert.deepEqual(translator.error("upstream timed out", "timeout_error"), [
      { type: "error", error: { type: "timeout_error", message: "upstream timed out" } },
    ]);
    assert.deepEqual(translator.push(chunk({ content: "B" })), []);
    assert.deepEqual(translator.end(), []);
    assert.deepEqual(translator.error("again"), []);
    assert.deepEqual(createEventTranslator(streamOptions).error("boom"), [
      { type: "error", error: { type: "api_error", message: "boom" } },
    ]);
  });

  test("formatSse: the event name, its JSON, a blank line", () => {
    assert.equal(formatSse(ping), 'event: ping\ndata: {"type":"ping"}\n\n');
    assert.equal(
      formatSse(text(0, "a\nb") as StreamEvent),
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\\nb"}}\n\n',
    );
  });
});

/** What a gateway's SSE body would be for these chunks. */
function sseOf(chunks: ChatCompletionChunk[]): string {
  return translate(chunks).map(formatSse).join("");
}

const sseResponse = (text: string) => new Response(text, { headers: { "content-type": "text/event-stream" } });

const thinkingToolStream = [
  chunk({ role: "assistant", reasoning_content: "Paris, " }),
  chunk({ reasoning_content: "then Rome." }),
  chunk({ thinking_blocks: [{ type: "thinking", signature: "sig_1" }] }),
  chunk({ content: "Checking." }),
  chunk(toolDelta(0, { id: "call_1", name: "get_weather", arguments: '{"ci' })),
  chunk(toolDelta(0, { arguments: 'ty":"Paris"}' })),
  chunk(toolDelta(1, { id: "call_2", name: "get_weather", arguments: '{"city":"Rome"}' })),
  chunk({}, "tool_calls"),
  usageChunk(usage({ prompt_tokens: 300, completion_tokens: 40, prompt_tokens_details: { cached_tokens: 200 } })),
];

const expectedThinkingToolMessage = message({
  content: [
    { type: "thinking", thinking: "Paris, then Rome.", signature: "sig_1" },
    textBlock("Checking."),
    toolUse("call_1", { city: "Paris" }),
    toolUse("call_2", { city: "Rome" }),
  ],
  stop_reason: "tool_use",
  usage: anthropicUsage({ input_tokens: 100, output_tokens: 40, cache_read_input_tokens: 200 }),
});

/** A message as JSON, less the `parsed_output` the SDK's stream helper adds (null without output_config.format). */
function plain(value: unknown): unknown {
  const { parsed_output: _parsed, ...rest } = JSON.parse(JSON.stringify(value)) as Json;
  return rest;
}

/** A client of Anthropic's SDK whose fetch is the gateway's translation, in process: no socket. */
function sdkClient(
  answer: (request: ChatCompletionRequest, model: string) => Response,
  seen: ChatCompletionRequest[] = [],
) {
  return new Anthropic({
    apiKey: "test-key",
    baseURL: "http://gateway.invalid",
    maxRetries: 0,
    fetch: async (_url: string | URL | Request, init?: RequestInit) => {
      const sent = JSON.parse(String(init?.body)) as { model: string };
      const request = fromAnthropicRequest(sent);
      seen.push(request);
      return answer(request, sent.model);
    },
  });
}

describe("Anthropic's SDK reads what we send", () => {
  test("its SSE parser yields our events, ping left out", async () => {
    const events: RawMessageStreamEvent[] = [];
    const stream = Stream.fromSSEResponse<RawMessageStreamEvent>(
      sseResponse(sseOf(thinkingToolStream)),
      new AbortController(),
    );
    for await (const event of stream) events.push(event);
    assert.deepEqual(
      events,
      translate(thinkingToolStream).filter((event) => event.type !== "ping"),
    );
  });

  test("an error event raises the SDK's APIError of that type", async () => {
    const translator = createEventTranslator(streamOptions);
    const text = [...translator.push(chunk({ content: "A" })), ...translator.error("Overloaded", "overloaded_error")]
      .map(formatSse)
      .join("");
    const stream = Stream.fromSSEResponse<RawMessageStreamEvent>(sseResponse(text), new AbortController());
    await assert.rejects(
      async () => {
        for await (const _event of stream);
      },
      (error: unknown) => error instanceof APIError && error.type === "overloaded_error",
    );
  });

  test("messages.stream(): the SDK's accumulator builds the message we meant, from the request it sent", async () => {
    const seen: ChatCompletionRequest[] = [];
    const client = sdkClient(() => sseResponse(sseOf(thinkingToolStream)), seen);
    const final = await client.messages
      .stream({
        model: "claude-sonnet-5",
        max_tokens: 1024,
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
        messages: [{ role: "user", content: "Weather in Paris and Rome?" }],
        tools: [{ name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
        thinking: { type: "enabled", budget_tokens: 1024 },
      })
      .finalMessage();
    assert.deepEqual(plain(final), expectedThinkingToolMessage);
    assert.equal(seen[0]?.stream, true);
    assert.deepEqual(seen[0]?.messages[0], {
      role: "system",
      content: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
    });
  });

  test("messages.create(): the SDK takes our Message; a stream of the same answer builds the same message", async () => {
    const answer = completion(
      { content: "Sunny.", tool_calls: [call("call_1", '{"city":"Oslo"}')] },
      "tool_calls",
      usage({ prompt_tokens: 20, completion_tokens: 8 }),
    );
    const client = sdkClient((request, model) =>
      request.stream
        ? sseResponse(sseOf(completionToChunks(answer)))
        : Response.json(toAnthropicMessage(answer, { model })),
    );
    const params = {
      model: "claude-sonnet-5",
      max_tokens: 64,
      messages: [{ role: "user" as const, content: "Oslo?" }],
    };
    const created = await client.messages.create(params);
    const streamed = await client.messages.stream(params).finalMessage();
    const expected = message({
      content: [textBlock("Sunny."), toolUse("call_1", { city: "Oslo" })],
      stop_reason: "tool_use",
      usage: anthropicUsage({ input_tokens: 20, output_tokens: 8 }),
    });
    assert.deepEqual(JSON.parse(JSON.stringify(created)), expected);
    assert.deepEqual(plain(streamed), expected);
  });

  test("a mid-conversation system message, as the SDK sends it, is accepted", async () => {
    const seen: ChatCompletionRequest[] = [];
    const client = sdkClient(
      (_request, model) => Response.json(toAnthropicMessage(completion({ content: "Ok" }), { model })),
      seen,
    );
    await client.messages.create({
      model: "claude-opus-4-8",
      max_tokens: 64,
      messages: [
        { role: "user", content: "Hi" },
        { role: "system", content: "Auto-approve mode is now enabled." },
      ],
    });
    assert.deepEqual(seen[0]?.messages, [
      { role: "user", content: "Hi" },
      { role: "system", content: "Auto-approve mode is now enabled." },
    ]);
  });
});
