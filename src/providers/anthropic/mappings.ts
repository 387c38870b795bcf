/**
 * The tables the answer and the stream translations share, so a call reads the same whether it streamed or not:
 * Anthropic's stop reasons as OpenAI finish reasons, and Anthropic's token counts as OpenAI usage.
 */
import type { StopReason } from "@anthropic-ai/sdk/resources/messages";
import type { Usage } from "../provider.ts";

/**
 * `stop_reason` → `finish_reason`. A reason missing from the table (Anthropic may add some within an API version)
 * is "stop": the answer ended and nothing says it is incomplete.
 */
const finishReasons: Record<StopReason, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
  // A paused server-tool turn is a complete answer as far as the caller can act on it.
  pause_turn: "stop",
  // The answer was cut off by the context window: for the caller that is a truncation like max_tokens.
  model_context_window_exceeded: "length",
};

export function finishReasonOf(stopReason: string | null | undefined): string {
  if (!stopReason) return "stop";
  return (finishReasons as Record<string, string | undefined>)[stopReason] ?? "stop";
}

/**
 * With structured output the forced tool's call is the answer, not a call for the client to run: a `tool_use`
 * stop is then an ordinary "stop". A truncation stays "length" (the JSON is incomplete).
 */
export function structuredFinishReason(stopReason: string | null | undefined): string {
  return stopReason === "tool_use" ? "stop" : finishReasonOf(stopReason);
}

/** Anthropic's token counts, from a Message's `usage` or accumulated over a stream. Nulls count as 0. */
export interface AnthropicTokens {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  output_tokens_details?: { thinking_tokens: number } | null;
}

/**
 * OpenAI usage. Anthropic's `input_tokens` leaves out the cached part of the prompt (read from or written to the
 * cache), so the prompt is the sum of all three; leaving the cache out (LiteLLM, Portkey) undercounts every cached
 * call. The raw cache counts stay on the usage because pricing charges them at their own rates.
 */
export function usageOf(tokens: AnthropicTokens): Usage {
  const input = tokens.input_tokens ?? 0;
  const cacheRead = tokens.cache_read_input_tokens ?? 0;
  const cacheCreation = tokens.cache_creation_input_tokens ?? 0;
  const promptTokens = input + cacheRead + cacheCreation;
  const completionTokens = tokens.output_tokens ?? 0;
  const usage: Usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    // `cache_write_tokens` is OpenAI's own name (CompletionUsage.prompt_tokens_details) for the tokens written.
    prompt_tokens_details: { cached_tokens: cacheRead, cache_write_tokens: cacheCreation },
    cache_read_input_tokens: cacheRead,
    cache_creation_input_tokens: cacheCreation,
  };
  const thinking = tokens.output_tokens_details?.thinking_tokens;
  if (typeof thinking === "number") usage.completion_tokens_details = { reasoning_tokens: thinking };
  return usage;
}

/** A thinking block as the OpenAI side carries it (`thinking_blocks`): Anthropic's own shape, complete. */
export type ThinkingBlockOut =
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "redacted_thinking"; data: string };
