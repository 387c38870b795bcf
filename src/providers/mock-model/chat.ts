/**
 * The mock model's chat answers in OpenAI's wire shape: a `chat.completion`, or the `chat.completion.chunk`s of a
 * stream. Validated in tests against OpenAI's own OpenAPI document.
 */
import { messageText } from "../../tokens.ts";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Usage } from "../provider.ts";
import { type Generation, generate } from "./generate.ts";

// Ids are unique per answer, like OpenAI's; only the content is deterministic.
const idPrefix = Math.floor(Math.random() * 36 ** 6)
  .toString(36)
  .padStart(6, "0");
let idCounter = 0;
const nextId = (prefix: string) => `${prefix}${idPrefix}${(++idCounter).toString(36).padStart(8, "0")}`;

const mockSystemFingerprint = "fp_mock0001";

function usageOf(generation: Generation): Usage {
  const completion = generation.choices.reduce((sum, choice) => sum + choice.completionTokens, 0);
  return {
    prompt_tokens: generation.promptTokens,
    completion_tokens: completion,
    total_tokens: generation.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A full `chat.completion` answer for a request already checked by `validateChatCompletionRequest`. */
export function createChatCompletion(body: ChatCompletionRequest): ChatCompletion {
  const generation = generate(body);
  return {
    id: nextId("chatcmpl-"),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: generation.choices.map((choice, index) => ({
      index,
      message: {
        role: "assistant",
        content: choice.content,
        refusal: null,
        annotations: [],
        ...(choice.toolCalls ? { tool_calls: choice.toolCalls } : {}),
      },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage: usageOf(generation),
    service_tier: "default",
    system_fingerprint: mockSystemFingerprint,
  };
}

/** Word-sized pieces (a space leads each word, as tokens do); long runs such as JSON are cut every 16 chars. */
function splitForStreaming(text: string): string[] {
  const pieces: string[] = [];
  for (const word of text.match(/\s*\S+|\s+/g) ?? []) {
    if (word.length <= 16) {
      pieces.push(word);
      continue;
    }
    const chars = Array.from(word); // code points, so a surrogate pair is never split
    for (let i = 0; i < chars.length; i += 16) pieces.push(chars.slice(i, i + 16).join(""));
  }
  return pieces;
}

export interface ChunkOptions {
  /** Adds the final usage chunk (`choices: []`), as `stream_options.include_usage` asks. */
  includeUsage: boolean;
}

/**
 * Prompt tokens as an upstream with a tokenizer of its own might count them (every model that is not OpenAI's):
 * one token per `bytesPerToken` UTF-8 bytes of the messages' text, tool calls, tools and output schema, plus
 * OpenAI's framing of 3 tokens a message and 3 for the reply. Used instead of OpenAI's tokenizer when the
 * `bytesPerToken` knob is set.
 */
export function promptTokensByBytes(body: ChatCompletionRequest, bytesPerToken: number): number {
  let bytes = 0;
  for (const message of body.messages) {
    bytes += Buffer.byteLength(messageText(message.content));
    if (typeof message.name === "string") bytes += Buffer.byteLength(message.name);
    if (message.tool_calls !== undefined) bytes += Buffer.byteLength(JSON.stringify(message.tool_calls));
  }
  if (body.tools !== undefined) bytes += Buffer.byteLength(JSON.stringify(body.tools));
  if (body.response_format !== undefined) bytes += Buffer.byteLength(JSON.stringify(body.response_format));
  return Math.ceil(bytes / bytesPerToken) + 3 * body.messages.length + 3;
}

/** The usage with its prompt tokens replaced by `promptTokens` (total adjusted). */
export function withPromptTokens(usage: Usage, promptTokens: number): Usage {
  return { ...usage, prompt_tokens: promptTokens, total_tokens: promptTokens + usage.completion_tokens };
}

/**
 * The stream of `chat.completion.chunk` objects for a request: per choice a role chunk, content (or tool call
 * argument) deltas and a chunk with the finish reason; then, if asked, the usage chunk.
 */
export function createChatCompletionChunks(body: ChatCompletionRequest, options: ChunkOptions): ChatCompletionChunk[] {
  const generation = generate(body);
  const id = nextId("chatcmpl-");
  const created = Math.floor(Date.now() / 1000);
  // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
  const chunk = (choices: ChatCompletionChunk["choices"]): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: body.model,
    system_fingerprint: mockSystemFingerprint,
    choices,
    ...(options.includeUsage ? { usage: null } : {}),
  });
  const chunks: ChatCompletionChunk[] = [];
  for (const [index, choice] of generation.choices.entries()) {
    const delta = (value: ChatCompletionChunk["choices"][number]["delta"]) =>
      chunk([{ index, delta: value, logprobs: null, finish_reason: null }]);
    if (choice.toolCalls) {
      chunks.push(delta({ role: "assistant", content: null, refusal: null }));
      for (const [callIndex, call] of choice.toolCalls.entries()) {
        chunks.push(
          delta({
            tool_calls: [
              {
                index: callIndex,
                id: call.id,
                type: "function",
                function: { name: call.function.name, arguments: "" },
              },
            ],
          }),
        );
        for (const piece of splitForStreaming(call.function.arguments)) {
          chunks.push(delta({ tool_calls: [{ index: callIndex, function: { arguments: piece } }] }));
        }
      }
    } else {
      chunks.push(delta({ role: "assistant", content: "", refusal: null }));
      for (const piece of splitForStreaming(choice.content ?? "")) chunks.push(delta({ content: piece }));
    }
    chunks.push(chunk([{ index, delta: {}, logprobs: null, finish_reason: choice.finishReason }]));
  }
  if (options.includeUsage) chunks.push({ ...chunk([]), usage: usageOf(generation) });
  return chunks;
}
