import type {
  MessageDeltaUsage,
  RawContentBlockDelta,
  RawContentBlockStartEvent,
  RawMessageStreamEvent,
  Usage as AnthropicUsage,
} from "@anthropic-ai/sdk/resources/messages";
import type { ErrorObject } from "@anthropic-ai/sdk/resources/shared";
import { isRecord } from "../../is-record.ts";
import type { ChatCompletionChunk, Usage } from "../../providers/provider.ts";
import { type AnthropicErrorType, messageUsage, stopReasonOf, tokenCountsOf } from "./mappings.ts";

/**
 * Internal (OpenAI) chunks → Anthropic's server-sent events, for POST /v1/messages with `stream: true`. Anthropic's
 * clients check the order, so it is exactly theirs: message_start; per block a content_block_start (the first one
 * followed by a single ping), its deltas and its content_block_stop, never two blocks open; then message_delta
 * (stop reason and usage) and message_stop. An `error` event ends a stream that fails on the way.
 */

export interface PingEvent {
  type: "ping";
}

export interface ErrorEvent {
  type: "error";
  error: ErrorObject;
}

/** RawMessageStreamEvent has no ping nor error event: the SDK reads them off the SSE event name. */
export type StreamEvent = RawMessageStreamEvent | PingEvent | ErrorEvent;

export interface EventTranslatorOptions {
  /** The caller's name for the model. */
  model: string;
  /** `msg_…`; messageIdOf(chunk id) gives the one the same answer would have unstreamed. */
  messageId: string;
  /**
   * The prompt's tokens as estimated before the call, for message_start: an OpenAI stream tells them only at the
   * end, and some clients (Claude Code) size their context from message_start alone. message_delta has the real ones.
   */
  inputTokens?: number;
}

export interface EventTranslator {
  /** The events a chunk makes (none once the stream has ended). */
  push(chunk: ChatCompletionChunk): StreamEvent[];
  /**
   * Whatever is still missing after the last chunk: the closing block, message_delta, message_stop. `usage`, the
   * caller's count, stands in when the stream told none.
   */
  end(usage?: Usage): StreamEvent[];
  /** The error event for a stream that fails part-way; nothing follows it. */
  error(message: string, type?: AnthropicErrorType): StreamEvent[];
}

type ContentBlock = RawContentBlockStartEvent["content_block"];

type OpenBlock =
  | { kind: "text"; index: number }
  | { kind: "redacted"; index: number }
  | { kind: "thinking"; index: number; signed: boolean }
  | { kind: "tool"; index: number; id: string; key: number };

type Delta = ChatCompletionChunk["choices"][number]["delta"];

export function createEventTranslator(options: EventTranslatorOptions): EventTranslator {
  return new Translator(options);
}

export function formatSse(event: StreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

class Translator implements EventTranslator {
  private events: StreamEvent[] = [];
  private started = false;
  private ended = false;
  private blocks = 0;
  private open: OpenBlock | undefined;
  /** OpenAI tool index → the id of the tool call its block was started for. */
  private readonly toolIds = new Map<number, string>();
  private calledTools = false;
  /** undefined until the finish chunk. */
  private finishReason: string | undefined;
  private usage: Usage | undefined;
  private finalUsage = false;

  constructor(private readonly options: EventTranslatorOptions) {}

  push(chunk: ChatCompletionChunk): StreamEvent[] {
    if (this.ended) return [];
    if (chunk.usage) this.usage = chunk.usage;
    this.start();
    // Anthropic has one answer: the first choice is the one read.
    const choice = chunk.choices.find((candidate) => candidate.index === 0) ?? chunk.choices[0];
    if (choice) this.delta(choice.delta);
    if (choice?.finish_reason) this.finishReason = choice.finish_reason;
    // The usage chunk (no choices) follows the finish chunk; some upstreams put usage on the finish chunk itself.
    // Usage on earlier chunks is only a running count, kept in case nothing better comes.
    if (chunk.usage && (chunk.choices.length === 0 || choice?.finish_reason)) this.finalUsage = true;
    if (this.finishReason !== undefined && this.finalUsage) this.finish();
    return this.flush();
  }

  end(usage?: Usage): StreamEvent[] {
    if (this.ended) return [];
    if (!this.finalUsage && usage) this.usage = usage;
    this.start();
    this.finish();
    return this.flush();
  }

  error(message: string, type: AnthropicErrorType = "api_error"): StreamEvent[] {
    if (this.ended) return [];
    this.ended = true;
    return [{ type: "error", error: { type, message } }];
  }

  private flush(): StreamEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.events.push({
      type: "message_start",
      message: {
        id: this.options.messageId,
        type: "message",
        role: "assistant",
        model: this.options.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        stop_details: null,
        container: null,
        diagnostics: null,
        usage: this.startUsage(),
      },
    });
  }

  /** Usage known so far: a first chunk that carries it (an Anthropic upstream's does), else the caller's estimate. */
  private startUsage(): AnthropicUsage {
    const counts = this.usage
      ? { ...tokenCountsOf(this.usage), output_tokens: 0 }
      : {
          input_tokens: this.options.inputTokens ?? 0,
          output_tokens: 0,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens_details: null,
        };
    return messageUsage(counts);
  }

  /** Within one delta, thinking comes before text and text before tool calls, as in Anthropic's answers. */
  private delta(delta: Delta): void {
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === "string" && reasoning) this.thinking(reasoning);
    if (Array.isArray(delta.thinking_blocks)) for (const block of delta.thinking_blocks) this.thinkingBlock(block);
    if (typeof delta.content === "string" && delta.content) this.text(delta.content);
    // A refusal is what the model said instead of an answer: the client shows it as text.
    if (typeof delta.refusal === "string" && delta.refusal) this.text(delta.refusal);
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls) this.toolCall(call);
  }

  private thinking(text: string): void {
    // A signature closes what it signs: thinking after it is a new block.
    if (this.open?.kind !== "thinking" || this.open.signed) this.startThinking();
    this.blockDelta({ type: "thinking_delta", thinking: text });
  }

  /**
   * The `thinking_blocks` extension of a delta (from an Anthropic upstream): a thinking entry brings its block's
   * signature (its text came as reasoning_content, so any text here is not taken twice), a redacted one is a block
   * of its own, whole at once.
   */
  private thinkingBlock(block: unknown): void {
    if (!isRecord(block)) return;
    if (block.type === "redacted_thinking" && typeof block.data === "string") {
      this.open = { kind: "redacted", index: this.startBlock({ type: "redacted_thinking", data: block.data }) };
      this.closeBlock();
    } else if (block.type === "thinking" && typeof block.signature === "string" && block.signature) {
      // Thinking shown as omitted has a signature and no text: its block starts here.
      if (this.open?.kind !== "thinking" || this.open.signed) this.startThinking();
      this.blockDelta({ type: "signature_delta", signature: block.signature });
      if (this.open?.kind === "thinking") this.open.signed = true;
    }
  }

  private startThinking(): void {
    const index = this.startBlock({ type: "thinking", thinking: "", signature: "" });
    this.open = { kind: "thinking", index, signed: false };
  }

  private text(text: string): void {
    if (this.open?.kind !== "text") this.startText();
    this.blockDelta({ type: "text_delta", text });
  }

  /**
   * A tool call's first chunk has its index, id and name; later ones the index and pieces of the arguments. A new
   * index (or a new id at a known index, as some compatible servers number every call 0) starts a new block.
   */
  private toolCall(call: unknown): void {
    if (!isRecord(call)) return;
    const key = typeof call.index === "number" ? call.index : 0;
    const fn = isRecord(call.function) ? call.function : {};
    const id = typeof call.id === "string" && call.id ? call.id : undefined;
    const known = this.toolIds.get(key);
    if (known === undefined || (id !== undefined && id !== known)) {
      const toolId = id ?? `toolu_${this.options.messageId}_${key}`;
      const name = typeof fn.name === "string" ? fn.name : "";
      this.toolIds.set(key, toolId);
      this.calledTools = true;
      const index = this.startBlock({ type: "tool_use", id: toolId, name, input: {}, caller: { type: "direct" } });
      this.open = { kind: "tool", index, id: toolId, key };
    }
    const pieces = fn.arguments;
    if (typeof pieces !== "string" || !pieces) return;
    // Pieces for a call whose block is already closed (an upstream interleaving parallel calls, which OpenAI does
    // not do) have nowhere to go: a block cannot reopen. They are dropped rather than put in another call's input.
    if (this.open?.kind === "tool" && this.open.key === key && this.open.id === this.toolIds.get(key)) {
      this.blockDelta({ type: "input_json_delta", partial_json: pieces });
    }
  }

  private startText(): void {
    this.open = { kind: "text", index: this.startBlock({ type: "text", text: "", citations: null }) };
  }

  /** Closes the open block and starts this one; the caller records it as open. Returns its index. */
  private startBlock(block: ContentBlock): number {
    this.closeBlock();
    const index = this.blocks++;
    this.events.push({ type: "content_block_start", index, content_block: block });
    if (index === 0) this.events.push({ type: "ping" });
    return index;
  }

  private closeBlock(): void {
    if (!this.open) return;
    this.events.push({ type: "content_block_stop", index: this.open.index });
    this.open = undefined;
  }

  private blockDelta(delta: RawContentBlockDelta): void {
    if (this.open) this.events.push({ type: "content_block_delta", index: this.open.index, delta });
  }

  private finish(): void {
    // A stream with nothing in it still has a block: an empty text block, as Anthropic sends for an empty answer.
    if (this.blocks === 0) this.startText();
    this.closeBlock();
    this.events.push({
      type: "message_delta",
      delta: {
        stop_reason: stopReasonOf(this.finishReason, this.calledTools),
        stop_sequence: null,
        stop_details: null,
        container: null,
      },
      usage: this.deltaUsage(),
    });
    this.events.push({ type: "message_stop" });
    this.ended = true;
  }

  /** The whole message's usage, input included (OpenAI tells it only now); unknown counts are null, kept as they were. */
  private deltaUsage(): MessageDeltaUsage {
    if (!this.usage) {
      const unknown = { input_tokens: null, cache_creation_input_tokens: null, cache_read_input_tokens: null };
      return { ...unknown, output_tokens: 0, output_tokens_details: null, server_tool_use: null };
    }
    return { ...tokenCountsOf(this.usage), server_tool_use: null };
  }
}
