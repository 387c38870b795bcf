import type {
  ContentBlock,
  Message,
  RedactedThinkingBlock,
  ThinkingBlock,
  ToolUseBlock,
  Usage as AnthropicUsage,
} from "@anthropic-ai/sdk/resources/messages";
import { isRecord } from "../../is-record.ts";
import type { ChatCompletion, Usage } from "../../providers/provider.ts";
import { messageIdOf, messageUsage, stopReasonOf, tokenCountsOf } from "./mappings.ts";

/** An internal (OpenAI) answer → Anthropic's Message, for POST /v1/messages without `stream`. */

type AssistantMessage = ChatCompletion["choices"][number]["message"];

export function toAnthropicMessage(completion: ChatCompletion, options: { model: string }): Message {
  const choice = completion.choices[0];
  const id = messageIdOf(completion.id);
  const content = choice?.message ? contentOf(choice.message, id) : [];
  return {
    id,
    type: "message",
    role: "assistant",
    // The caller's name for the model, not the upstream's (which may be a dated snapshot or another provider's).
    model: options.model,
    content,
    stop_reason: stopReasonOf(
      choice?.finish_reason,
      content.some((block) => block.type === "tool_use"),
    ),
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: messageUsageOf(completion.usage),
  };
}

/** Thinking first, then the text, then the tool calls: the order Anthropic's own answers have. */
function contentOf(message: AssistantMessage, messageId: string): ContentBlock[] {
  return [...thinkingOf(message), ...textOf(message), ...toolUsesOf(message.tool_calls, messageId)];
}

function isThinkingBlock(value: unknown): value is ThinkingBlock | RedactedThinkingBlock {
  if (!isRecord(value)) return false;
  if (value.type === "thinking") return typeof value.thinking === "string" && typeof value.signature === "string";
  return value.type === "redacted_thinking" && typeof value.data === "string";
}

/**
 * The `thinking_blocks` extension (an answer from Anthropic: signed blocks, passed on unchanged), else an
 * OpenAI-compatible upstream's `reasoning_content` as one unsigned block, as the stream translator does.
 */
function thinkingOf(message: AssistantMessage): ContentBlock[] {
  const blocks = Array.isArray(message.thinking_blocks) ? message.thinking_blocks.filter(isThinkingBlock) : [];
  if (blocks.length) return blocks;
  const reasoning = message.reasoning_content ?? message.reasoning;
  return typeof reasoning === "string" && reasoning ? [{ type: "thinking", thinking: reasoning, signature: "" }] : [];
}

const textBlock = (text: string): ContentBlock => ({ type: "text", text, citations: null });

/**
 * The text, if any (an empty string is no block: a tool-only turn has no leading empty text block), then a
 * refusal's text so the client sees why there is no answer. Content given as parts (an Anthropic answer can carry
 * blocks OpenAI has no form for as `{type: "anthropic", block}`) keeps those blocks in place.
 */
function textOf(message: AssistantMessage): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if (typeof message.content === "string" && message.content) blocks.push(textBlock(message.content));
  if (Array.isArray(message.content)) blocks.push(...message.content.flatMap(partBlock));
  if (typeof message.refusal === "string" && message.refusal) blocks.push(textBlock(message.refusal));
  return blocks;
}

function partBlock(part: unknown): ContentBlock[] {
  if (!isRecord(part)) return [];
  if (part.type === "text" && typeof part.text === "string") return part.text ? [textBlock(part.text)] : [];
  if (part.type === "anthropic" && isRecord(part.block) && typeof part.block.type === "string") {
    return [part.block as unknown as ContentBlock];
  }
  return [];
}

function toolUsesOf(toolCalls: unknown, messageId: string): ToolUseBlock[] {
  if (!Array.isArray(toolCalls)) return [];
  return toolCalls.flatMap((call, index) => {
    if (!isRecord(call) || !isRecord(call.function) || typeof call.function.name !== "string") return [];
    const id = typeof call.id === "string" && call.id ? call.id : `toolu_${messageId}_${index}`;
    const args = typeof call.function.arguments === "string" ? call.function.arguments : "";
    return [{ type: "tool_use", id, name: call.function.name, input: inputOf(args), caller: { type: "direct" } }];
  });
}

/**
 * Tool arguments as the object Anthropic's `input` must be. "" (a tool without parameters, as some upstreams send
 * it) is {}. Arguments that do not parse, or parse to something other than an object, are what a cut-off answer
 * (stop_reason max_tokens) leaves: the block is kept, with its id, as Anthropic itself keeps an incomplete tool_use
 * in a cut-off answer, but with an empty input rather than a repaired half: a client that runs it anyway fails the
 * tool's own input check and tells the model, instead of acting on half a value (a file's content cut short).
 */
function inputOf(args: string): Record<string, unknown> {
  if (!args.trim()) return {};
  try {
    const parsed: unknown = JSON.parse(args);
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** Usage in Anthropic's terms; what OpenAI does not tell is null, as 1.17.0's Usage allows. */
function messageUsageOf(usage: Usage | undefined): AnthropicUsage {
  return messageUsage(tokenCountsOf(usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }));
}
