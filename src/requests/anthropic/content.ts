import { isRecord } from "../../is-record.ts";
import type { ChatMessage } from "../../providers/provider.ts";
import { array, at, block, extras, invalid, isAbsent, type Json, optionalBoolean, record, string } from "./fields.ts";

/**
 * Anthropic content blocks → OpenAI message content. Where OpenAI has a counterpart the block becomes it; what OpenAI
 * has no field for rides along as an extension (`cache_control` under its own name, anything else under
 * `anthropic`), and a block OpenAI has no counterpart for at all becomes an `{type: "anthropic", block}` part, so the
 * Anthropic translator gets every block back as it came and the OpenAI provider can refuse what it cannot send.
 */

export interface TextPart {
  type: "text";
  text: string;
  cache_control?: unknown;
  anthropic?: Json;
}

export interface ImagePart {
  type: "image_url";
  image_url: { url: string };
  cache_control?: unknown;
  anthropic?: Json;
}

/** A block OpenAI has no part for (document, search_result, a server tool's result, …), carried whole. */
export interface AnthropicPart {
  type: "anthropic";
  block: Json;
}

export type ContentPart = TextPart | ImagePart | AnthropicPart;

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
  cache_control?: unknown;
  anthropic?: Json;
}

/** Puts `cache_control` and the block's other Anthropic-only keys on its OpenAI counterpart. */
function withExtensions<T extends object>(target: T, source: Json, known: readonly string[]): T {
  const extended: T & { cache_control?: unknown; anthropic?: Json } = { ...target };
  if (!isAbsent(source.cache_control)) extended.cache_control = source.cache_control;
  const rest = extras(source, [...known, "type", "cache_control"]);
  if (rest) extended.anthropic = rest;
  return extended;
}

const isPlainText = (part: ContentPart): part is TextPart =>
  part.type === "text" && part.cache_control === undefined && part.anthropic === undefined;

function textPart(source: Json, path: string): TextPart {
  return withExtensions({ type: "text", text: string(source.text, at(path, "text")) }, source, ["text"]);
}

/** base64 → a data URL, url → that URL; a Files API image (`file_id`) has no OpenAI form and is carried whole. */
function imagePart(source: Json, path: string): ImagePart | AnthropicPart {
  const from = record(source.source, at(path, "source"));
  const kind = string(from.type, at(path, "source.type"));
  let url: string;
  if (kind === "base64") {
    const mediaType = string(from.media_type, at(path, "source.media_type"));
    url = `data:${mediaType};base64,${string(from.data, at(path, "source.data"))}`;
  } else if (kind === "url") {
    url = string(from.url, at(path, "source.url"));
  } else {
    return { type: "anthropic", block: source };
  }
  return withExtensions({ type: "image_url", image_url: { url } }, source, ["source"]);
}

/** A block of a user turn (or of a tool result) other than `tool_result`. */
function userPart(value: Json & { type: string }, path: string): ContentPart {
  if (value.type === "text") return textPart(value, path);
  if (value.type === "image") return imagePart(value, path);
  return { type: "anthropic", block: value };
}

function toolMessage(value: Json, path: string): ChatMessage {
  const toolCallId = string(value.tool_use_id, at(path, "tool_use_id"));
  const message: ChatMessage = { role: "tool", tool_call_id: toolCallId, content: toolResultContent(value, path) };
  if (optionalBoolean(value.is_error, at(path, "is_error"))) message.is_error = true;
  return withExtensions(message, value, ["tool_use_id", "content", "is_error"]);
}

function toolResultContent(value: Json, path: string): string | ContentPart[] {
  if (isAbsent(value.content)) return "";
  if (typeof value.content === "string") return value.content;
  const parts = blocksOf(value.content, at(path, "content")).map((item, index) =>
    userPart(item, at(path, `content.${index}`)),
  );
  // OpenAI takes no empty list of parts; an empty result is an empty string to both sides.
  return parts.length ? parts : "";
}

function blocksOf(content: unknown, path: string): Array<Json & { type: string }> {
  return array(content, path).map((item, index) => block(item, at(path, index)));
}

/**
 * A user turn. Its `tool_result` blocks become `tool` messages placed first, in their order: OpenAI wants a tool
 * result right after the assistant message that called the tool, and Anthropic accepts text before a tool result,
 * so a user message there would split the call from its result. The rest of the turn follows as one user message.
 */
export function userMessages(content: unknown, path: string): ChatMessage[] {
  if (typeof content === "string") return [{ role: "user", content }];
  const toolMessages: ChatMessage[] = [];
  const parts: ContentPart[] = [];
  blocksOf(content, path).forEach((value, index) => {
    if (value.type === "tool_result") toolMessages.push(toolMessage(value, at(path, index)));
    else parts.push(userPart(value, at(path, index)));
  });
  return parts.length ? [...toolMessages, { role: "user", content: parts }] : toolMessages;
}

function toolCall(value: Json, path: string): ToolCall {
  const input = record(value.input, at(path, "input"));
  const call: ToolCall = {
    id: string(value.id, at(path, "id")),
    type: "function",
    function: { name: string(value.name, at(path, "name")), arguments: JSON.stringify(input) },
  };
  // `caller: {type: "direct"}` is the default, and every tool_use echoed back from an answer carries it.
  const caller = isRecord(value.caller) && value.caller.type === "direct" ? ["caller"] : [];
  return withExtensions(call, value, ["id", "name", "input", ...caller]);
}

/** Thinking blocks go back to Anthropic byte for byte (it checks their signatures), so only their shape is read. */
function thinkingBlock(value: Json & { type: string }, path: string): Json {
  if (value.type === "thinking") {
    string(value.thinking, at(path, "thinking"));
    string(value.signature, at(path, "signature"));
  } else {
    string(value.data, at(path, "data"));
  }
  return value;
}

/**
 * An assistant turn: text (a string when it is one plain text block), `tool_use` → `tool_calls`, thinking and
 * redacted thinking → the `thinking_blocks` extension in their order, any other block an `anthropic` part kept in
 * place among the text parts.
 */
export function assistantMessage(content: unknown, path: string): ChatMessage {
  if (typeof content === "string") return { role: "assistant", content };
  const parts: ContentPart[] = [];
  const toolCalls: ToolCall[] = [];
  const thinkingBlocks: Json[] = [];
  blocksOf(content, path).forEach((value, index) => {
    const where = at(path, index);
    if (value.type === "text") parts.push(textPart(value, where));
    else if (value.type === "tool_use") toolCalls.push(toolCall(value, where));
    else if (value.type === "thinking" || value.type === "redacted_thinking")
      thinkingBlocks.push(thinkingBlock(value, where));
    else parts.push({ type: "anthropic", block: value });
  });
  const [only] = parts;
  const text = parts.length === 1 && only && isPlainText(only) ? only.text : parts;
  // OpenAI wants content unless there are tool calls; an empty string says "no text" to both sides.
  const message: ChatMessage = { role: "assistant", content: parts.length ? text : toolCalls.length ? null : "" };
  if (toolCalls.length) message.tool_calls = toolCalls;
  if (thinkingBlocks.length) message.thinking_blocks = thinkingBlocks;
  return message;
}

/**
 * The top-level `system` or a mid-conversation `{role: "system"}` message: a string, or text blocks. One plain block
 * is a string; blocks stay text parts (cache_control kept) otherwise, so no separator is invented between them and
 * the Anthropic translator gets the same blocks back. Empty → nothing.
 */
export function systemMessage(content: unknown, path: string): ChatMessage | undefined {
  if (typeof content === "string") return content ? { role: "system", content } : undefined;
  const parts = array(content, path).map((item, index) => {
    const value = block(item, at(path, index));
    if (value.type !== "text") invalid(at(path, `${index}.type`), "Input should be 'text'");
    return textPart(value, at(path, index));
  });
  const [only] = parts;
  if (!only) return undefined;
  return { role: "system", content: parts.length === 1 && isPlainText(only) ? only.text : parts };
}
