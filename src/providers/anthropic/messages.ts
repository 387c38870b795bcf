/**
 * OpenAI's `messages` → Anthropic's `system` and `messages`. Anthropic keeps the system prompt out of the turns,
 * wants tool results inside a user turn, and refuses two turns of one role in a row, so:
 *  - every `system` and `developer` message, wherever it stands, joins the top-level `system`, in order;
 *  - a `tool` message becomes a user turn of one `tool_result` block;
 *  - then consecutive turns of one role merge into one (so a tool result and the user message after it are one
 *    user turn), and a turn left without blocks is dropped.
 */
import type {
  ContentBlockParam,
  MessageParam,
  TextBlockParam,
  ToolResultBlockParam,
  ToolUseBlockParam,
} from "@anthropic-ai/sdk/resources/messages";
import { isRecord } from "../../is-record.ts";
import { contentBlocks, systemBlocks, toolResultContent } from "./content.ts";
import { at, invalid } from "./invalid.ts";

type Json = Record<string, unknown>;
type Role = "user" | "assistant";
interface Turn {
  role: Role;
  content: ContentBlockParam[];
}

export interface Conversation {
  system?: string | TextBlockParam[];
  messages: MessageParam[];
}

export function toConversation(messages: unknown): Conversation {
  if (!Array.isArray(messages)) invalid("messages", "must be an array");
  const system: TextBlockParam[] = [];
  const turns: Turn[] = [];
  messages.forEach((message, i) => {
    const path = at("messages", i);
    if (!isRecord(message)) invalid(path, "must be a message object");
    if (message.role === "system" || message.role === "developer") {
      system.push(...systemBlocks(message.content, at(path, "content")));
    } else {
      turns.push(turnOf(message, path));
    }
  });
  const merged = trimPrefill(mergeTurns(turns));
  if (merged.length === 0) invalid("messages", "Anthropic needs at least one user or assistant message with content");
  return system.length ? { system: systemParam(system), messages: merged } : { messages: merged };
}

function turnOf(message: Json, path: string): Turn {
  switch (message.role) {
    case "user":
      return { role: "user", content: contentBlocks(message.content, at(path, "content")) };
    case "assistant":
      return { role: "assistant", content: assistantBlocks(message, path) };
    case "tool":
      return { role: "user", content: [toolResult(message, path)] };
    default:
      return invalid(at(path, "role"), `a message of role ${JSON.stringify(message.role)} cannot be sent to Anthropic`);
  }
}

/** Empty turns go first, so the turns either side of one can merge. */
function mergeTurns(turns: Turn[]): Turn[] {
  const merged: Turn[] = [];
  for (const turn of turns) {
    if (turn.content.length === 0) continue;
    const last = merged.at(-1);
    if (last?.role === turn.role) last.content = [...last.content, ...turn.content];
    else merged.push({ role: turn.role, content: turn.content });
  }
  return merged;
}

/**
 * A conversation ending on an assistant turn asks Claude to continue it (a prefill), and Anthropic refuses a prefill
 * ending in whitespace: the trailing whitespace goes (and the text block with it, if nothing else is left).
 */
function trimPrefill(turns: Turn[]): Turn[] {
  const last = turns.at(-1);
  const block = last?.role === "assistant" ? last.content.at(-1) : undefined;
  if (!last || block?.type !== "text" || !/\s$/.test(block.text)) return turns;
  const text = block.text.trimEnd();
  const content = [...last.content.slice(0, -1), ...(text ? [{ ...block, text }] : [])];
  return content.length ? [...turns.slice(0, -1), { role: "assistant", content }] : turns.slice(0, -1);
}

/** A string when it can be one; blocks when a part asks for a cache breakpoint, which only a block can carry. */
function systemParam(blocks: TextBlockParam[]): string | TextBlockParam[] {
  if (blocks.some((block) => block.cache_control)) return blocks;
  return blocks.map((block) => block.text).join("\n\n");
}

/**
 * Thinking blocks first: with thinking and tools, Anthropic wants the assistant turn's thinking back unchanged and
 * ahead of its tool calls (LiteLLM dropped them, and the next call failed). Then the text, then the tool calls.
 */
function assistantBlocks(message: Json, path: string): ContentBlockParam[] {
  if (message.function_call !== undefined && message.function_call !== null) {
    invalid(at(path, "function_call"), "the deprecated function_call is not translated; send tool_calls");
  }
  return [
    ...thinkingBlocks(message.thinking_blocks, at(path, "thinking_blocks")),
    ...contentBlocks(message.content, at(path, "content")),
    ...toolUses(message.tool_calls, at(path, "tool_calls")),
  ];
}

/**
 * Signed blocks go back; an unsigned one (thinking another model produced, which a client switching models mid
 * conversation sends along, or the empty signature this service gives a non-Anthropic model's reasoning on
 * /v1/messages) is dropped: Anthropic refuses a block it did not sign, and needs back only its own.
 */
function thinkingBlocks(value: unknown, path: string): ContentBlockParam[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid(path, "must be an array of thinking blocks");
  // The block's own fields only: a client's bookkeeping beside them (an index) would be an extra input to Anthropic.
  return value.flatMap((block, j): ContentBlockParam[] => {
    if (isRecord(block) && block.type === "thinking" && typeof block.thinking === "string") {
      const { thinking, signature } = block;
      if (signature === undefined || signature === null || signature === "") return [];
      if (typeof signature === "string") return [{ type: "thinking", thinking, signature }];
    } else if (isRecord(block) && block.type === "redacted_thinking" && typeof block.data === "string") {
      return [{ type: "redacted_thinking", data: block.data }];
    }
    return invalid(
      at(path, j),
      'must be {type: "thinking", thinking, signature} or {type: "redacted_thinking", data}, as Anthropic returned it',
    );
  });
}

function toolUses(value: unknown, path: string): ToolUseBlockParam[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid(path, "must be an array");
  return value.map((call, j) => toolUse(call, at(path, j)));
}

function toolUse(call: unknown, path: string): ToolUseBlockParam {
  if (!isRecord(call)) invalid(path, "must be a tool call object");
  if (call.type !== undefined && call.type !== "function") {
    invalid(at(path, "type"), `only function tool calls can be sent to Anthropic, not ${JSON.stringify(call.type)}`);
  }
  if (typeof call.id !== "string") invalid(at(path, "id"), "must be a string");
  const fn = call.function;
  const fnPath = at(path, "function");
  if (!isRecord(fn)) invalid(fnPath, "must be an object");
  if (typeof fn.name !== "string") invalid(at(fnPath, "name"), "must be a string");
  return { type: "tool_use", id: call.id, name: fn.name, input: toolInput(fn.arguments, at(fnPath, "arguments")) };
}

/**
 * The call's arguments, parsed: Anthropic takes the input as an object, not as JSON text. An empty string is an
 * empty object: it is what a streamed call of a tool without parameters adds up to (LiteLLM failed on it).
 */
function toolInput(value: unknown, path: string): Json {
  if (isRecord(value)) return value;
  if (typeof value !== "string") invalid(path, "must be a string of JSON");
  if (value.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    invalid(path, `is not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(parsed)) invalid(path, "must be a JSON object: Anthropic takes a tool's input as an object");
  return parsed;
}

function toolResult(message: Json, path: string): ToolResultBlockParam {
  if (typeof message.tool_call_id !== "string") invalid(at(path, "tool_call_id"), "must be a string");
  const content = toolResultContent(message.content, at(path, "content"));
  return {
    type: "tool_result",
    tool_use_id: message.tool_call_id,
    ...(content !== undefined && { content }),
    // An extension: OpenAI has no way to say a tool failed; Anthropic's entry point (and clients who know) can.
    ...(message.is_error === true && { is_error: true }),
  };
}
