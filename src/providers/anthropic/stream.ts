/**
 * Anthropic's stream events → OpenAI's chat completion chunks, one translator per stream (it keeps the message id,
 * the token counts and what each content block is). The chunks add up to what response.ts gives for the same
 * message: text as content, tool calls indexed from 0 in the order they start (not by Anthropic's block index,
 * which counts text and thinking blocks too — Portkey's bug), thinking as `reasoning_content` plus
 * `thinking_blocks` pieces carrying each signature, and the usage (cache tokens included) in a last chunk of its
 * own, as OpenAI sends it with `stream_options.include_usage`.
 */
import type {
  RawContentBlockDeltaEvent,
  RawContentBlockStartEvent,
  RawContentBlockStopEvent,
  RawMessageDeltaEvent,
  RawMessageStreamEvent,
} from "@anthropic-ai/sdk/resources/messages";
import type { ErrorResponse } from "@anthropic-ai/sdk/resources/shared";
import { AppError } from "../../errors.ts";
import type { ChatCompletionChunk } from "../provider.ts";
import { type AnthropicTokens, finishReasonOf, structuredFinishReason, usageOf } from "./mappings.ts";
import type { TranslationOptions } from "./response.ts";

/** What an Anthropic stream carries: the SDK's events, and the `ping` and `error` events its types leave out. */
export type AnthropicStreamEvent = RawMessageStreamEvent | ErrorResponse | { type: "ping" };

export interface ChunkTranslator {
  /** The chunks one event makes (often none); throws the upstream error an `error` event reports. */
  push(event: AnthropicStreamEvent): ChatCompletionChunk[];
}

type Delta = ChatCompletionChunk["choices"][number]["delta"];

/** What each content block (by Anthropic's index) is, and what its deltas become. */
type BlockState =
  | { kind: "tool"; index: number; sawArguments: boolean }
  | { kind: "structured"; sawArguments: boolean }
  | { kind: "thinking"; sawText: boolean }
  | { kind: "other" };

export function createChunkTranslator(options: TranslationOptions): ChunkTranslator {
  const structuredTool = options.structuredOutput?.tool;
  const created = Math.floor(Date.now() / 1000);
  const blocks = new Map<number, BlockState>();
  const tokens: AnthropicTokens = {};
  let id = "";
  let toolCalls = 0;
  let structuredSeen = false;
  let thinkingSeen = false;

  const chunk = (delta: Delta, finishReason: string | null = null): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: options.model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });

  function start(event: RawContentBlockStartEvent): ChatCompletionChunk[] {
    const block = event.content_block;
    switch (block.type) {
      case "text":
        blocks.set(event.index, { kind: "other" });
        return block.text ? [chunk({ content: block.text })] : [];
      case "tool_use":
        if (block.name === structuredTool && !structuredSeen) {
          structuredSeen = true;
          blocks.set(event.index, { kind: "structured", sawArguments: false });
          return [];
        }
        return [toolCallStart(event.index, block.id, block.name)];
      case "thinking": {
        const state: BlockState = { kind: "thinking", sawText: false };
        blocks.set(event.index, state);
        return reasoning(state, block.thinking);
      }
      case "redacted_thinking":
        blocks.set(event.index, { kind: "other" });
        return [chunk({ thinking_blocks: [{ type: "redacted_thinking", data: block.data }] })];
      default:
        // Server tools' blocks have no OpenAI shape (as in response.ts).
        blocks.set(event.index, { kind: "other" });
        return [];
    }
  }

  function toolCallStart(blockIndex: number, callId: string, name: string): ChatCompletionChunk {
    const index = toolCalls++;
    blocks.set(blockIndex, { kind: "tool", index, sawArguments: false });
    return chunk({ tool_calls: [{ index, id: callId, type: "function", function: { name, arguments: "" } }] });
  }

  function delta(event: RawContentBlockDeltaEvent): ChatCompletionChunk[] {
    const state = blocks.get(event.index);
    const piece = event.delta;
    switch (piece.type) {
      case "text_delta":
        return piece.text ? [chunk({ content: piece.text })] : [];
      case "input_json_delta":
        return state ? toolArguments(state, piece.partial_json) : [];
      case "thinking_delta":
        return state?.kind === "thinking" ? reasoning(state, piece.thinking) : [];
      case "signature_delta":
        // The signature closes its thinking block; the block's text came as reasoning_content.
        return [chunk({ thinking_blocks: [{ type: "thinking", thinking: "", signature: piece.signature }] })];
      default:
        return [];
    }
  }

  /** A second thinking block's text starts after a blank line, as response.ts joins them. */
  function reasoning(state: { sawText: boolean }, text: string): ChatCompletionChunk[] {
    if (!text) return [];
    const separator = !state.sawText && thinkingSeen ? "\n\n" : "";
    state.sawText = true;
    thinkingSeen = true;
    return [chunk({ reasoning_content: separator + text })];
  }

  function toolArguments(state: BlockState, json: string): ChatCompletionChunk[] {
    if (!json || (state.kind !== "tool" && state.kind !== "structured")) return [];
    state.sawArguments = true;
    if (state.kind === "structured") return [chunk({ content: json })];
    return [chunk({ tool_calls: [{ index: state.index, function: { arguments: json } }] })];
  }

  /**
   * A tool without parameters streams no input at all, and "" is not JSON: the arguments are then "{}", what the
   * same call answered without streaming carries (LiteLLM's clients failed to send "" back).
   */
  function stop(event: RawContentBlockStopEvent): ChatCompletionChunk[] {
    const state = blocks.get(event.index);
    if (state?.kind === "tool" && !state.sawArguments) {
      return [chunk({ tool_calls: [{ index: state.index, function: { arguments: "{}" } }] })];
    }
    if (state?.kind === "structured" && !state.sawArguments) return [chunk({ content: "{}" })];
    return [];
  }

  /** message_delta's usage is cumulative: each count it gives replaces the one message_start gave. */
  function messageDelta(event: RawMessageDeltaEvent): ChatCompletionChunk[] {
    const usage = event.usage;
    tokens.output_tokens = usage.output_tokens;
    if (usage.input_tokens !== null) tokens.input_tokens = usage.input_tokens;
    if (usage.cache_read_input_tokens !== null) tokens.cache_read_input_tokens = usage.cache_read_input_tokens;
    if (usage.cache_creation_input_tokens !== null) {
      tokens.cache_creation_input_tokens = usage.cache_creation_input_tokens;
    }
    if (usage.output_tokens_details) tokens.output_tokens_details = usage.output_tokens_details;
    const stopReason = event.delta.stop_reason;
    const finishReason = structuredSeen ? structuredFinishReason(stopReason) : finishReasonOf(stopReason);
    return [chunk({}, finishReason)];
  }

  return {
    push(event) {
      switch (event.type) {
        case "message_start": {
          id = event.message.id;
          Object.assign(tokens, event.message.usage);
          return [chunk({ role: "assistant", content: "" })];
        }
        case "content_block_start":
          return start(event);
        case "content_block_delta":
          return delta(event);
        case "content_block_stop":
          return stop(event);
        case "message_delta":
          return messageDelta(event);
        case "message_stop":
          return [
            { id, object: "chat.completion.chunk", created, model: options.model, choices: [], usage: usageOf(tokens) },
          ];
        case "error":
          throw new AppError("upstream_error", `the upstream reported an error mid-stream: ${event.error.message}`);
        default:
          // ping, and any event type Anthropic adds within the API version.
          return [];
      }
    },
  };
}
