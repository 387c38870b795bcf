/**
 * The service's chat calls may carry what only Anthropic understands, put there by the Anthropic-compatible entry
 * point so that a claude model loses nothing on the way through: a top-level `anthropic` object and `thinking`,
 * `thinking_blocks` and `is_error` on messages, `cache_control` and `anthropic` on parts, tools and tool calls,
 * `{type: "anthropic"}` parts.
 * OpenAI refuses fields it does not know, so they are taken off before a call goes to an OpenAI-compatible upstream;
 * an Anthropic-only content block (a document, a search result) has no OpenAI form and is refused, naming it.
 */
import { AppError } from "../errors.ts";
import { isRecord } from "../is-record.ts";
import type { ChatCompletionRequest, ChatMessage } from "./provider.ts";

const topLevel = ["anthropic", "thinking"] as const;
const onMessages = ["thinking_blocks", "is_error", "cache_control"] as const;

/** The body as OpenAI takes it; the same object when it carries no extension (nearly always). */
export function withoutAnthropicExtensions(body: ChatCompletionRequest): ChatCompletionRequest {
  let messages: ChatMessage[] | undefined;
  body.messages.forEach((message, index) => {
    const plain = plainMessage(message, index);
    if (plain !== message) {
      messages ??= [...body.messages];
      messages[index] = plain;
    }
  });
  const tools = Array.isArray(body.tools) ? plainTools(body.tools) : undefined;
  const extended = topLevel.some((key) => body[key] !== undefined);
  if (!messages && !extended && tools === body.tools) return body;

  const plain: ChatCompletionRequest = { ...body, messages: messages ?? body.messages };
  for (const key of topLevel) delete plain[key];
  if (tools !== undefined) plain.tools = tools;
  return plain;
}

function plainMessage(message: ChatMessage, index: number): ChatMessage {
  let plain: ChatMessage | undefined;
  for (const key of onMessages) {
    if (message[key] === undefined) continue;
    plain ??= { ...message };
    delete plain[key];
  }
  if (Array.isArray(message.tool_calls) && message.tool_calls.some((call) => isRecord(call) && call.anthropic)) {
    plain ??= { ...message };
    plain.tool_calls = message.tool_calls.map((call) => {
      if (!isRecord(call)) return call;
      const { anthropic: _anthropic, ...rest } = call;
      return rest;
    });
  }
  if (Array.isArray(message.content)) {
    const parts = plainParts(message.content, index);
    if (parts !== message.content) {
      plain ??= { ...message };
      plain.content = parts;
    }
  }
  return plain ?? message;
}

function plainParts(parts: unknown[], index: number): unknown[] {
  let plain: unknown[] | undefined;
  parts.forEach((part, position) => {
    if (!isRecord(part)) return;
    if (part.type === "anthropic") {
      const kind = isRecord(part.block) && typeof part.block.type === "string" ? part.block.type : "Anthropic";
      const path = `messages[${index}].content[${position}]`;
      throw new AppError("invalid_request", `${path}: ${kind} blocks reach only Anthropic (claude-…) models`, {
        param: path,
        errors: [{ path, message: `${kind} blocks reach only Anthropic models` }],
      });
    }
    if (part.cache_control === undefined && part.anthropic === undefined) return;
    const { cache_control: _cacheControl, anthropic: _anthropic, ...rest } = part;
    plain ??= [...parts];
    plain[position] = rest;
  });
  return plain ?? parts;
}

function plainTools(tools: unknown[]): unknown[] {
  if (!tools.some((tool) => isRecord(tool) && (tool.cache_control !== undefined || tool.anthropic !== undefined))) {
    return tools;
  }
  return tools.map((tool) => {
    if (!isRecord(tool)) return tool;
    const { cache_control: _cacheControl, anthropic: _anthropic, ...rest } = tool;
    return rest;
  });
}
