import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import type { ContentBlock, Message, StopReason } from "@anthropic-ai/sdk/resources/messages";
import { AppError } from "../../src/errors.ts";
import { type AnthropicParams, toAnthropicRequest } from "../../src/providers/anthropic/request.ts";
import { fromAnthropicMessage } from "../../src/providers/anthropic/response.ts";
import { type AnthropicStreamEvent, createChunkTranslator } from "../../src/providers/anthropic/stream.ts";
import type { ChatCompletionChunk, ChatCompletionRequest, ChatMessage } from "../../src/providers/provider.ts";
import { fromAnthropicRequest } from "../../src/requests/anthropic/request.ts";
import { assertMatchesOpenAISchema } from "../helpers/openai-spec.ts";

/**
 * The translation of calls going out to Anthropic, one row per mapping: OpenAI request → Anthropic params, Anthropic
 * message → OpenAI answer, Anthropic events (fixtures in test/fixtures/anthropic/) → OpenAI chunks.
 */

const model = "claude-sonnet-4-5";
const defaultMaxTokens = 1024;
const hi: ChatMessage = { role: "user", content: "Hi" };
const hiTurn = { role: "user", content: [{ type: "text", text: "Hi" }] };
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};
const weatherToolOut = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};
const cache = { type: "ephemeral" };
const signed = { type: "thinking", thinking: "Paris, so celsius.", signature: "EqQBCgIYAhIM" };
const redacted = { type: "redacted_thinking", data: "EmwKAhgBEgy3va3p" };

const translate = (body: Partial<ChatCompletionRequest>) =>
  toAnthropicRequest({ model, messages: [hi], ...body }, { defaultMaxTokens });

/** The params a row expects: the minimal call's, with the row's fields over them. */
const params = (fields: Record<string, unknown>): AnthropicParams =>
  ({ model, max_tokens: defaultMaxTokens, messages: [hiTurn], ...fields }) as AnthropicParams;

describe("toAnthropicRequest: OpenAI request → Anthropic params", () => {
  const rows: Array<{ name: string; body: Partial<ChatCompletionRequest>; expected: AnthropicParams }> = [
    { name: "a user string becomes a text block; max_tokens defaults", body: {}, expected: params({}) },
    {
      name: "system and developer messages, wherever they are, join the top-level system in order",
      body: {
        messages: [
          { role: "system", content: "Be brief." },
          hi,
          { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        ],
      },
      expected: params({ system: "Be brief.\n\nAnswer in French." }),
    },
    {
      name: "a system part with cache_control makes system text blocks that keep it",
      body: {
        messages: [
          { role: "system", content: [{ type: "text", text: "Long instructions", cache_control: cache }] },
          { role: "developer", content: "More" },
          hi,
        ],
      },
      expected: params({
        system: [
          { type: "text", text: "Long instructions", cache_control: cache },
          { type: "text", text: "More" },
        ],
      }),
    },
    {
      name: "max_completion_tokens wins over max_tokens",
      body: { max_tokens: 50, max_completion_tokens: 70 },
      expected: params({ max_tokens: 70 }),
    },
    { name: "max_tokens is sent", body: { max_tokens: 50 }, expected: params({ max_tokens: 50 }) },
    {
      name: "a tool result then a user message are one user turn; consecutive users merge",
      body: {
        messages: [
          hi,
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
            ],
          },
          { role: "tool", tool_call_id: "toolu_1", content: "18°C" },
          { role: "user", content: "And tomorrow?" },
        ],
      },
      expected: params({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Hi" },
              { type: "text", text: "Weather in Paris?" },
            ],
          },
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { location: "Paris" } }],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: "18°C" },
              { type: "text", text: "And tomorrow?" },
            ],
          },
        ],
      }),
    },
    {
      name: "empty text parts are dropped, and a message left empty with them (its neighbours merge)",
      body: {
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "" },
              { type: "text", text: "Hi" },
            ],
          },
          { role: "assistant", content: "" },
          { role: "user", content: "again" },
        ],
      },
      expected: params({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Hi" },
              { type: "text", text: "again" },
            ],
          },
        ],
      }),
    },
    {
      name: "parts: text keeps cache_control, data: URL → base64 image, https URL → url image, extension passes",
      body: {
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Compare", cache_control: cache },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "high" } },
              { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
              {
                type: "anthropic",
                block: { type: "document", source: { type: "text", media_type: "text/plain", data: "A memo" } },
              },
            ],
          },
        ],
      },
      expected: params({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Compare", cache_control: cache },
              { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
              { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
              { type: "document", source: { type: "text", media_type: "text/plain", data: "A memo" } },
            ],
          },
        ],
      }),
    },
    {
      name: "assistant: thinking_blocks first, then text, then tool_use with parsed arguments ('' is {})",
      body: {
        messages: [
          hi,
          {
            role: "assistant",
            content: "Checking.",
            thinking_blocks: [signed, redacted],
            tool_calls: [
              { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
              { id: "toolu_2", type: "function", function: { name: "snooze", arguments: "" } },
            ],
          },
          { role: "tool", tool_call_id: "toolu_1", content: "18°C" },
          { role: "tool", tool_call_id: "toolu_2", content: "ok" },
        ],
      },
      expected: params({
        messages: [
          hiTurn,
          {
            role: "assistant",
            content: [
              signed,
              redacted,
              { type: "text", text: "Checking." },
              { type: "tool_use", id: "toolu_1", name: "get_weather", input: { location: "Paris" } },
              { type: "tool_use", id: "toolu_2", name: "snooze", input: {} },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: "18°C" },
              { type: "tool_result", tool_use_id: "toolu_2", content: "ok" },
            ],
          },
        ],
      }),
    },
    {
      name: "tool results: parts become blocks, is_error is kept, empty content is left out",
      body: {
        messages: [
          hi,
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "a", type: "function", function: { name: "shot", arguments: "{}" } },
              { id: "b", type: "function", function: { name: "shot", arguments: "{}" } },
            ],
          },
          {
            role: "tool",
            tool_call_id: "a",
            content: [
              { type: "text", text: "the screen" },
              { type: "image_url", image_url: { url: "data:image/jpeg;base64,/9j/4AAQ" } },
            ],
          },
          { role: "tool", tool_call_id: "b", content: "", is_error: true },
        ],
      },
      expected: params({
        messages: [
          hiTurn,
          {
            role: "assistant",
            content: [
              { type: "tool_use", id: "a", name: "shot", input: {} },
              { type: "tool_use", id: "b", name: "shot", input: {} },
            ],
          },
          {
            role: "user",
            content: [
              {
                type: "tool_result",
                tool_use_id: "a",
                content: [
                  { type: "text", text: "the screen" },
                  { type: "image", source: { type: "base64", media_type: "image/jpeg", data: "/9j/4AAQ" } },
                ],
              },
              { type: "tool_result", tool_use_id: "b", is_error: true },
            ],
          },
        ],
      }),
    },
    {
      name: "a final assistant turn (a prefill) loses its trailing whitespace",
      body: { messages: [hi, { role: "assistant", content: "The answer is " }] },
      expected: params({
        messages: [hiTurn, { role: "assistant", content: [{ type: "text", text: "The answer is" }] }],
      }),
    },
    {
      name: "tools: input_schema from parameters (default an empty object schema), cache_control kept",
      body: {
        tools: [weatherTool, { type: "function", function: { name: "snooze" }, cache_control: cache }],
      },
      expected: params({
        tools: [
          weatherToolOut,
          { name: "snooze", input_schema: { type: "object", properties: {} }, cache_control: cache },
        ],
      }),
    },
    ...(
      [
        ["auto", { type: "auto" }],
        ["required", { type: "any" }],
        ["none", { type: "none" }],
        [
          { type: "function", function: { name: "get_weather" } },
          { type: "tool", name: "get_weather" },
        ],
      ] as const
    ).map(([choice, expected]) => ({
      name: `tool_choice ${JSON.stringify(choice)}`,
      body: { tools: [weatherTool], tool_choice: choice },
      expected: params({ tools: [weatherToolOut], tool_choice: expected }),
    })),
    {
      name: "parallel_tool_calls: false → disable_parallel_tool_use on the choice (auto when none is given)",
      body: { tools: [weatherTool], parallel_tool_calls: false },
      expected: params({ tools: [weatherToolOut], tool_choice: { type: "auto", disable_parallel_tool_use: true } }),
    },
    {
      name: "parallel_tool_calls: false with a required choice",
      body: { tools: [weatherTool], tool_choice: "required", parallel_tool_calls: false },
      expected: params({ tools: [weatherToolOut], tool_choice: { type: "any", disable_parallel_tool_use: true } }),
    },
    {
      name: "stop (a string) → stop_sequences; temperature, top_p; user → metadata.user_id",
      body: { stop: "END", temperature: 0.2, top_p: 0.9, user: "user-42" },
      expected: params({ stop_sequences: ["END"], temperature: 0.2, top_p: 0.9, metadata: { user_id: "user-42" } }),
    },
    { name: "stop (an array)", body: { stop: ["a", "b"] }, expected: params({ stop_sequences: ["a", "b"] }) },
    {
      name: "the thinking extension passes through",
      body: { thinking: { type: "enabled", budget_tokens: 2048 }, max_tokens: 4096 },
      expected: params({ thinking: { type: "enabled", budget_tokens: 2048 }, max_tokens: 4096 }),
    },
    {
      name: "unsigned thinking (another model's, or an empty signature) is dropped; signed thinking stays",
      body: {
        messages: [
          hi,
          {
            role: "assistant",
            content: "Paris.",
            thinking_blocks: [
              { type: "thinking", thinking: "From gpt-5, unsigned." },
              { type: "thinking", thinking: "From /v1/messages on gpt.", signature: "" },
              signed,
            ],
          },
          { role: "user", content: "And Rome?" },
        ],
      },
      expected: params({
        messages: [
          hiTurn,
          { role: "assistant", content: [signed, { type: "text", text: "Paris." }] },
          { role: "user", content: [{ type: "text", text: "And Rome?" }] },
        ],
      }),
    },
    {
      name: "the extension's server tools join the function tools after them, not instead of them",
      body: {
        tools: [weatherTool],
        anthropic: { tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 2 }] },
      },
      expected: params({
        tools: [weatherToolOut, { type: "web_search_20250305", name: "web_search", max_uses: 2 }],
      }),
    },
    {
      name: "server tools alone (a tool_choice with them comes in the extension too)",
      body: {
        anthropic: { tools: [{ type: "web_search_20250305", name: "web_search" }], tool_choice: { type: "any" } },
      },
      expected: params({ tools: [{ type: "web_search_20250305", name: "web_search" }], tool_choice: { type: "any" } }),
    },
    {
      name: "the anthropic extension is merged last (its metadata wins over user)",
      body: { user: "u", anthropic: { top_k: 5, metadata: { user_id: "from-anthropic" }, service_tier: "auto" } },
      expected: params({ top_k: 5, metadata: { user_id: "from-anthropic" }, service_tier: "auto" }),
    },
    {
      name: "silently dropped: penalties, logit_bias, seed, store, OpenAI's metadata and service_tier…",
      body: {
        frequency_penalty: 0.5,
        presence_penalty: 0.5,
        logit_bias: { "50256": -100 },
        seed: 7,
        store: true,
        metadata: { tag: "x" },
        service_tier: "flex",
        stream_options: { include_usage: true },
        prediction: { type: "content", content: "x" },
        reasoning_effort: "low",
        n: 1,
      },
      expected: params({}),
    },
  ];

  for (const row of rows) {
    test(row.name, () => {
      const { params: sent, structuredOutput } = translate(row.body);
      assert.deepEqual(sent, row.expected);
      assert.equal(structuredOutput, undefined);
    });
  }

  const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
  const structuredRows = [
    {
      name: "json_schema → a forced tool of that name",
      format: { type: "json_schema", json_schema: { name: "city_facts", description: "Facts", schema, strict: true } },
      tool: { name: "city_facts", description: "Facts", input_schema: schema, strict: true },
    },
    {
      name: "json_object → a forced json_object tool taking any object",
      format: { type: "json_object" },
      tool: { name: "json_object", input_schema: { type: "object" } },
    },
  ] as const;
  for (const row of structuredRows) {
    test(`response_format ${row.name}`, () => {
      const result = translate({ response_format: row.format as ChatCompletionRequest["response_format"] });
      assert.deepEqual(result, {
        params: params({ tools: [row.tool], tool_choice: { type: "tool", name: row.tool.name } }),
        structuredOutput: { tool: row.tool.name },
      });
    });
  }
});

describe("toAnthropicRequest: what cannot be sent is a 400 naming the field", () => {
  const rows: Array<{ body: Partial<ChatCompletionRequest>; path: string }> = [
    { body: { n: 2 }, path: "n" },
    { body: { logprobs: true }, path: "logprobs" },
    { body: { top_logprobs: 3 }, path: "top_logprobs" },
    { body: { audio: { voice: "alloy", format: "mp3" } }, path: "audio" },
    { body: { modalities: ["text", "audio"] }, path: "modalities" },
    { body: { temperature: 1.5 }, path: "temperature" },
    { body: { tools: [weatherTool], response_format: { type: "json_object" } }, path: "response_format" },
    { body: { tools: [{ type: "custom", custom: { name: "x" } }] }, path: "tools[0].type" },
    { body: { tool_choice: "sometimes", tools: [weatherTool] }, path: "tool_choice" },
    {
      body: { messages: [hi, { role: "user", content: [{ type: "input_audio", input_audio: {} }] }] },
      path: "messages[1].content[0].type",
    },
    {
      body: {
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "a" },
              { type: "image_url", image_url: { url: "ftp://x/y.png" } },
            ],
          },
        ],
      },
      path: "messages[0].content[1].image_url.url",
    },
    {
      body: {
        messages: [
          { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/tiff;base64,AAAA" } }] },
        ],
      },
      path: "messages[0].content[0].image_url.url",
    },
    {
      body: {
        messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }, hi],
      },
      path: "messages[0].content[0].type",
    },
    {
      body: {
        messages: [
          hi,
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "a", type: "function", function: { name: "f", arguments: "{}" } },
              { id: "b", type: "function", function: { name: "f", arguments: "{not json" } },
            ],
          },
        ],
      },
      path: "messages[1].tool_calls[1].function.arguments",
    },
    {
      body: {
        messages: [
          hi,
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "a", type: "function", function: { name: "f", arguments: "[1]" } }],
          },
        ],
      },
      path: "messages[1].tool_calls[0].function.arguments",
    },
    { body: { messages: [hi, { role: "tool", content: "x" }] }, path: "messages[1].tool_call_id" },
    {
      body: { messages: [hi, { role: "assistant", content: "x", thinking_blocks: [{ type: "thinking" }] }] },
      path: "messages[1].thinking_blocks[0]",
    },
    { body: { messages: [{ role: "system", content: "only a system prompt" }] }, path: "messages" },
  ];

  for (const { body, path } of rows) {
    test(path, () => {
      assert.throws(
        () => translate(body),
        (error: unknown) => {
          assert.ok(error instanceof AppError);
          assert.equal(error.code, "invalid_request");
          assert.equal(error.status, 400);
          assert.equal(error.param, path);
          assert.equal(error.errors?.[0]?.path, path);
          assert.ok(error.message.startsWith(`${path}: `), error.message);
          return true;
        },
      );
    });
  }

  test("a temperature above 1 says Anthropic's range rather than being clamped", () => {
    assert.throws(() => translate({ temperature: 1.2 }), /from 0 to 1, not 1.2/);
  });
});

/** A Message as Anthropic answers it, every field the SDK's type has. */
function message(content: unknown[], stopReason: StopReason, usage: Partial<Message["usage"]> = {}): Message {
  return {
    id: "msg_01",
    type: "message",
    role: "assistant",
    model: "claude-sonnet-4-5-20250929",
    content: content as ContentBlock[],
    stop_reason: stopReason,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: {
      input_tokens: 10,
      output_tokens: 5,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      cache_creation: null,
      inference_geo: null,
      output_tokens_details: null,
      server_tool_use: null,
      service_tier: "standard",
      speed: null,
      ...usage,
    },
  };
}

const text = (value: string) => ({ type: "text", text: value, citations: null });
const toolUse = (id: string, name: string, input: unknown) => ({
  type: "tool_use",
  id,
  name,
  input,
  caller: { type: "direct" },
});
const plainUsage = {
  prompt_tokens: 10,
  completion_tokens: 5,
  total_tokens: 15,
  prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
};

describe("fromAnthropicMessage: Anthropic message → OpenAI answer", () => {
  const rows: Array<{
    name: string;
    message: Message;
    structuredOutput?: { tool: string };
    expected: { message: Record<string, unknown>; finish_reason: string; usage?: Record<string, unknown> };
  }> = [
    {
      name: "text blocks join into the content",
      message: message([text("Hello"), text(", world")], "end_turn"),
      expected: { message: { role: "assistant", content: "Hello, world", refusal: null }, finish_reason: "stop" },
    },
    {
      name: "tool_use blocks → tool_calls in order, content null without text",
      message: message(
        [toolUse("toolu_1", "get_weather", { location: "Paris" }), toolUse("toolu_2", "snooze", {})],
        "tool_use",
      ),
      expected: {
        message: {
          role: "assistant",
          content: null,
          refusal: null,
          tool_calls: [
            { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
            { id: "toolu_2", type: "function", function: { name: "snooze", arguments: "{}" } },
          ],
        },
        finish_reason: "tool_calls",
      },
    },
    {
      name: "thinking and redacted thinking → thinking_blocks (complete, in order) and reasoning_content",
      message: message([signed, redacted, { ...signed, thinking: "Second thought." }, text("18°C")], "end_turn"),
      expected: {
        message: {
          role: "assistant",
          content: "18°C",
          refusal: null,
          reasoning_content: "Paris, so celsius.\n\nSecond thought.",
          thinking_blocks: [signed, redacted, { ...signed, thinking: "Second thought." }],
        },
        finish_reason: "stop",
      },
    },
    {
      name: "structured output: the forced tool's input is the content, no tool_calls, finish stop",
      message: message([toolUse("toolu_9", "city_facts", { city: "Paris", population: 2102650 })], "tool_use"),
      structuredOutput: { tool: "city_facts" },
      expected: {
        message: { role: "assistant", content: '{"city":"Paris","population":2102650}', refusal: null },
        finish_reason: "stop",
      },
    },
    {
      name: "usage: the prompt counts the cache reads and writes; the raw counts stay",
      message: message([text("ok")], "end_turn", {
        input_tokens: 25,
        cache_read_input_tokens: 1000,
        cache_creation_input_tokens: 200,
        output_tokens: 89,
        output_tokens_details: { thinking_tokens: 41 },
      }),
      expected: {
        message: { role: "assistant", content: "ok", refusal: null },
        finish_reason: "stop",
        usage: {
          prompt_tokens: 1225,
          completion_tokens: 89,
          total_tokens: 1314,
          prompt_tokens_details: { cached_tokens: 1000, cache_write_tokens: 200 },
          completion_tokens_details: { reasoning_tokens: 41 },
          cache_read_input_tokens: 1000,
          cache_creation_input_tokens: 200,
        },
      },
    },
    ...(
      [
        ["end_turn", "stop"],
        ["stop_sequence", "stop"],
        ["max_tokens", "length"],
        ["tool_use", "tool_calls"],
        ["refusal", "content_filter"],
        ["pause_turn", "stop"],
        ["model_context_window_exceeded", "length"],
        ["a_reason_added_later", "stop"],
      ] as const
    ).map(([stopReason, finishReason]) => ({
      name: `stop_reason ${stopReason} → ${finishReason}`,
      message: message([text("x")], stopReason as StopReason),
      expected: { message: { role: "assistant", content: "x", refusal: null }, finish_reason: finishReason },
    })),
  ];

  for (const row of rows) {
    test(row.name, () => {
      const before = Math.floor(Date.now() / 1000);
      const answer = fromAnthropicMessage(row.message, {
        model: "anthropic/claude-sonnet-4-5",
        ...(row.structuredOutput && { structuredOutput: row.structuredOutput }),
      });
      assertMatchesOpenAISchema("CreateChatCompletionResponse", answer);
      assert.ok(answer.created >= before && answer.created <= Math.floor(Date.now() / 1000) + 1);
      assert.deepEqual(answer, {
        id: "msg_01",
        object: "chat.completion",
        created: answer.created,
        model: "anthropic/claude-sonnet-4-5",
        choices: [
          { index: 0, message: row.expected.message, finish_reason: row.expected.finish_reason, logprobs: null },
        ],
        usage: row.expected.usage ?? plainUsage,
      });
    });
  }
});

const fixture = (name: string): AnthropicStreamEvent[] =>
  JSON.parse(
    readFileSync(new URL(`../fixtures/anthropic/${name}.json`, import.meta.url), "utf8"),
  ) as AnthropicStreamEvent[];

function translateStream(name: string, structuredOutput?: { tool: string }): ChatCompletionChunk[] {
  const translator = createChunkTranslator({
    model: "claude-sonnet-4-5",
    ...(structuredOutput && { structuredOutput }),
  });
  const chunks = fixture(name).flatMap((event) => translator.push(event));
  for (const chunk of chunks) assertMatchesOpenAISchema("CreateChatCompletionStreamResponse", chunk);
  return chunks;
}

const deltas = (chunks: ChatCompletionChunk[]) =>
  chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.delta));
const joined = (chunks: ChatCompletionChunk[], key: string) =>
  deltas(chunks)
    .map((delta) => delta[key])
    .filter((value): value is string => typeof value === "string")
    .join("");

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: string;
  function: { name?: string; arguments: string };
}

/** Tool calls put back together the way OpenAI's clients do: by `index`, concatenating the arguments. */
function toolCalls(chunks: ChatCompletionChunk[]): Array<{ id?: string; name?: string; arguments: string }> {
  const calls: Array<{ id?: string; name?: string; arguments: string }> = [];
  for (const delta of deltas(chunks)) {
    for (const call of (delta.tool_calls ?? []) as ToolCallDelta[]) {
      const known = calls[call.index] ?? { arguments: "" };
      calls[call.index] = known;
      if (call.id) known.id = call.id;
      if (call.function.name) known.name = call.function.name;
      known.arguments += call.function.arguments;
    }
  }
  return calls;
}

describe("createChunkTranslator: Anthropic events → OpenAI chunks", () => {
  test("thinking with a signature, text, then a tool call in pieces; usage with cache tokens last", () => {
    const chunks = translateStream("thinking-text-tool-use-with-cache");
    for (const chunk of chunks) {
      assert.equal(chunk.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
      assert.equal(chunk.object, "chat.completion.chunk");
      assert.equal(chunk.model, "claude-sonnet-4-5");
      assert.equal(chunk.created, chunks[0]?.created);
    }
    assert.deepEqual(chunks[0]?.choices, [
      { index: 0, delta: { role: "assistant", content: "" }, finish_reason: null },
    ]);
    assert.equal(
      joined(chunks, "reasoning_content"),
      "The user wants the weather in Paris. I should call get_weather in celsius.",
    );
    assert.deepEqual(
      deltas(chunks).flatMap((delta) => (delta.thinking_blocks as unknown[] | undefined) ?? []),
      [{ type: "thinking", thinking: "", signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds" }],
    );
    assert.equal(joined(chunks, "content"), "Let me check the weather in Paris.");

    const calls = toolCalls(chunks);
    assert.equal(calls.length, 1, "tool call indexes count tool calls from 0, not Anthropic's block index (2)");
    assert.equal(calls[0]?.id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert.equal(calls[0]?.name, "get_weather");
    assert.deepEqual(JSON.parse(calls[0]?.arguments ?? ""), { location: "Paris, France", unit: "celsius" });

    const finishes = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    assert.deepEqual(finishes, ["tool_calls"]);
    assert.deepEqual(chunks.at(-1), {
      id: "msg_01XFDUDYJgAACzvnptvVoYEL",
      object: "chat.completion.chunk",
      created: chunks[0]?.created,
      model: "claude-sonnet-4-5",
      choices: [],
      usage: {
        prompt_tokens: 1225,
        completion_tokens: 89,
        total_tokens: 1314,
        prompt_tokens_details: { cached_tokens: 1000, cache_write_tokens: 200 },
        completion_tokens_details: { reasoning_tokens: 41 },
        cache_read_input_tokens: 1000,
        cache_creation_input_tokens: 200,
      },
    });
  });

  test("two tool calls index 0 and 1; one without arguments adds up to {}", () => {
    const calls = toolCalls(translateStream("two-tools-second-without-arguments"));
    assert.deepEqual(
      calls.map((call) => [call.id, call.name, JSON.parse(call.arguments)]),
      [
        ["toolu_01A09q90qw90lq917835lq9", "get_time", { timezone: "Europe/Paris" }],
        ["toolu_01B19r01rx01mr028946mr0", "snooze", {}],
      ],
    );
  });

  test("message_delta's null counts keep message_start's", () => {
    const usage = translateStream("two-tools-second-without-arguments").at(-1)?.usage;
    assert.equal(usage?.prompt_tokens, 410);
    assert.equal(usage?.completion_tokens, 61);
  });

  test("structured output: the forced tool's pieces are content, and the finish is stop", () => {
    const chunks = translateStream("structured-output-forced-tool", { tool: "city_facts" });
    assert.deepEqual(toolCalls(chunks), []);
    assert.deepEqual(JSON.parse(joined(chunks, "content")), { city: "Paris", population: 2102650 });
    const finishes = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    assert.deepEqual(finishes, ["stop"]);
  });

  test("a redacted thinking block comes whole as a thinking_blocks piece; max_tokens → length", () => {
    const chunks = translateStream("redacted-thinking-then-text");
    assert.deepEqual(
      deltas(chunks).flatMap((delta) => (delta.thinking_blocks as unknown[] | undefined) ?? []),
      [
        {
          type: "redacted_thinking",
          data: "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2pabG6UkPTH9BWl",
        },
      ],
    );
    assert.equal(joined(chunks, "content"), "Here is my answer.");
    const finishes = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    assert.deepEqual(finishes, ["length"]);
  });

  test("an error event mid-stream throws the upstream error, after the chunks before it", () => {
    const translator = createChunkTranslator({ model });
    const events = fixture("overloaded-error-mid-stream");
    const before = events.slice(0, -1).flatMap((event) => translator.push(event));
    assert.equal(joined(before, "content"), "Once upon");
    assert.throws(
      () => translator.push(events.at(-1) as AnthropicStreamEvent),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === "upstream_error" &&
        error.message === "the upstream reported an error mid-stream: Overloaded",
    );
  });

  test("ping and content_block_stop make no chunk", () => {
    const translator = createChunkTranslator({ model });
    assert.deepEqual(translator.push({ type: "ping" }), []);
    assert.deepEqual(translator.push({ type: "content_block_stop", index: 0 }), []);
  });
});

describe("/v1/messages to a claude model: the request Anthropic gets is the one the client sent", () => {
  test("system blocks, thinking, a tool round, client and server tools, tool_choice, metadata and top_k", () => {
    const sent = {
      model,
      max_tokens: 2048,
      system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: "Weather in Paris, and any news?" }] },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Weather first.", signature: "EqQBCgIYAhIM" },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "18°C" },
            { type: "text", text: "Now the news." },
          ],
        },
      ],
      tools: [
        {
          name: "get_weather",
          description: "Current weather",
          input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
        { type: "web_search_20250305", name: "web_search", max_uses: 2 },
      ],
      tool_choice: { type: "auto" },
      thinking: { type: "enabled", budget_tokens: 1024 },
      metadata: { user_id: "user-7" },
      top_k: 5,
    };
    const { params } = toAnthropicRequest(fromAnthropicRequest(sent), { defaultMaxTokens });
    assert.deepEqual(params, sent);
  });
});
