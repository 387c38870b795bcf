import type { OutputTokensDetails, StopReason, Usage as AnthropicUsage } from "@anthropic-ai/sdk/resources/messages";
import type { ErrorObject } from "@anthropic-ai/sdk/resources/shared";
import { isRecord } from "../../is-record.ts";
import type { Usage } from "../../providers/provider.ts";

/** The tables between the two wire formats, shared by the answer and the stream translators. */

const stopReasons = new Map<string, StopReason>([
  ["stop", "end_turn"],
  ["length", "max_tokens"],
  ["tool_calls", "tool_use"],
  ["function_call", "tool_use"],
  ["content_filter", "refusal"],
]);

/**
 * OpenAI's finish_reason → Anthropic's stop_reason; null or unknown → end_turn. A turn that called tools is tool_use
 * whatever the upstream said: some OpenAI-compatible servers finish such a turn with "stop", and a client that reads
 * end_turn ends the session without running the tools (LiteLLM's and Bifrost's bug). A cut-off (max_tokens) or a
 * refusal still says so.
 */
export function stopReasonOf(finishReason: string | null | undefined, calledTools: boolean): StopReason {
  const reason = (finishReason && stopReasons.get(finishReason)) || "end_turn";
  return reason === "end_turn" && calledTools ? "tool_use" : reason;
}

/** Anthropic's tool_choice types → OpenAI's modes (`tool` names a function and is built where it is read). */
export const toolChoiceModes = new Map<string, "auto" | "required" | "none">([
  ["auto", "auto"],
  ["any", "required"],
  ["none", "none"],
]);

/**
 * `msg_…` from the completion's id, so the same (cached) answer keeps its id: an id already in Anthropic's form (an
 * answer from Anthropic) stays as it is, an OpenAI one loses its `chatcmpl-` prefix.
 */
export function messageIdOf(completionId: string): string {
  return completionId.startsWith("msg_") ? completionId : `msg_${completionId.replace(/^chatcmpl-/, "")}`;
}

export interface TokenCounts {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  output_tokens_details: OutputTokensDetails | null;
}

const count = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;

const detail = (details: unknown, key: string): number | undefined =>
  isRecord(details) ? count(details[key]) : undefined;

/**
 * OpenAI's usage in Anthropic's terms. OpenAI's prompt_tokens counts the cached prompt too; Anthropic's input_tokens
 * is only what was neither read from nor written to the cache, the three adding up to the whole prompt. The cache
 * counts come from the extension fields an Anthropic answer carries, else from OpenAI's own details.
 */
export function tokenCountsOf(usage: Usage): TokenCounts {
  const cacheRead = count(usage.cache_read_input_tokens) ?? detail(usage.prompt_tokens_details, "cached_tokens") ?? 0;
  const cacheCreation =
    count(usage.cache_creation_input_tokens) ?? detail(usage.prompt_tokens_details, "cache_write_tokens") ?? 0;
  const thinking = detail(usage.completion_tokens_details, "reasoning_tokens");
  return {
    // Never below zero, should an upstream's prompt_tokens leave the cached part out.
    input_tokens: Math.max(0, (count(usage.prompt_tokens) ?? 0) - cacheRead - cacheCreation),
    output_tokens: count(usage.completion_tokens) ?? 0,
    cache_read_input_tokens: cacheRead,
    cache_creation_input_tokens: cacheCreation,
    output_tokens_details: thinking === undefined ? null : { thinking_tokens: thinking },
  };
}

export type AnthropicErrorType = ErrorObject["type"];

/** A Message's usage from token counts: what OpenAI does not tell is null, as 1.17.0's Usage allows. */
export function messageUsage(counts: TokenCounts): AnthropicUsage {
  return {
    ...counts,
    cache_creation: null,
    inference_geo: null,
    server_tool_use: null,
    service_tier: null,
    speed: null,
  };
}
