import { isRecord } from "../../is-record.ts";
import type { ChatCompletionRequest, ChatMessage } from "../../providers/provider.ts";
import { assistantMessage, systemMessage, userMessages } from "./content.ts";
import {
  array,
  at,
  extras,
  invalid,
  isAbsent,
  type Json,
  optionalBoolean,
  optionalNumber,
  optionalRecord,
  optionalString,
  record,
  string,
} from "./fields.ts";
import { toolChoiceModes } from "./mappings.ts";

/**
 * The body of POST /v1/messages (Anthropic's MessageCreateParams) → the internal OpenAI request. Anything wrong is a
 * 400 naming the field in Anthropic's terms. What OpenAI has no field for is kept, unchanged, as an extension
 * (`anthropic`, `thinking`, `thinking_blocks`, `cache_control`, `{type: "anthropic"}` parts) for the Anthropic
 * translator to restore; the OpenAI provider drops or refuses those.
 */

/** The fields read here; every other top-level field goes to the `anthropic` extension as it is. */
const mappedFields = [
  "model",
  "max_tokens",
  "messages",
  "system",
  "tools",
  "tool_choice",
  "stop_sequences",
  "temperature",
  "top_p",
  "metadata",
  "stream",
  "thinking",
] as const;

export function fromAnthropicRequest(body: unknown): ChatCompletionRequest {
  if (!isRecord(body)) invalid("", "the request body must be a JSON object");
  const params: Json = body;
  const model = string(params.model, "model");
  if (!model) invalid("model", "String should have at least 1 character");
  const maxTokens = maxTokensOf(params.max_tokens);
  const system = isAbsent(params.system) ? undefined : systemMessage(params.system, "system");
  const messages = [...(system ? [system] : []), ...conversation(params.messages)];
  const request: ChatCompletionRequest = { model, messages, max_tokens: maxTokens };
  const anthropic: Json = extras(params, mappedFields) ?? {};
  Object.assign(request, sampling(params), toolsOf(params, anthropic), userOf(params.metadata, anthropic));
  if (!isAbsent(params.thinking)) request.thinking = record(params.thinking, "thinking");
  if (Object.keys(anthropic).length) request.anthropic = anthropic;
  return request;
}

/**
 * A non-negative integer. Anthropic takes 0 (it warms the prompt cache without answering, as 1.17.0's reference
 * says), so 0 passes here too; an OpenAI upstream turns it down itself.
 */
function maxTokensOf(value: unknown): number {
  if (isAbsent(value)) invalid("max_tokens", "Field required");
  if (typeof value !== "number" || !Number.isInteger(value)) invalid("max_tokens", "Input should be a valid integer");
  if (value < 0) invalid("max_tokens", "Input should be greater than or equal to 0");
  return value;
}

const roles = ["user", "assistant", "system"];

const emptyContentRule = "all messages must have non-empty content except for the optional final assistant message";

function conversation(value: unknown): ChatMessage[] {
  const messages = array(value, "messages");
  if (!messages.length) invalid("messages", "List should have at least 1 item");
  return messages.flatMap((item, index) => {
    const path = at("messages", index);
    const message = record(item, path);
    const role = string(message.role, at(path, "role"));
    if (!roles.includes(role)) invalid(at(path, "role"), "Input should be 'user', 'assistant' or 'system'");
    const content = message.content;
    if (isAbsent(content)) invalid(at(path, "content"), "Field required");
    if (typeof content !== "string" && !Array.isArray(content)) {
      invalid(at(path, "content"), "Input should be a string or a list of content blocks");
    }
    if (!content.length) {
      // Anthropic's own rule; a final empty assistant turn prefills nothing, so it is left out.
      if (role === "assistant" && index === messages.length - 1) return [];
      invalid(path, emptyContentRule);
    }
    return turn(role, content, path);
  });
}

function turn(role: string, content: string | unknown[], path: string): ChatMessage[] {
  const where = at(path, "content");
  if (role === "user") return userMessages(content, where);
  if (role === "assistant") return [assistantMessage(content, where)];
  // A mid-conversation system message (1.17.0's SystemMessageParam; Claude Code sends them): a system message there.
  return [systemMessage(content, where) ?? invalid(path, emptyContentRule)];
}

function sampling(params: Json): Partial<ChatCompletionRequest> {
  const out: Partial<ChatCompletionRequest> = {};
  const temperature = optionalNumber(params.temperature, "temperature");
  const topP = optionalNumber(params.top_p, "top_p");
  const stream = optionalBoolean(params.stream, "stream");
  if (temperature !== undefined) out.temperature = temperature;
  if (topP !== undefined) out.top_p = topP;
  if (stream !== undefined) out.stream = stream;
  if (!isAbsent(params.stop_sequences)) {
    out.stop = array(params.stop_sequences, "stop_sequences").map((item, index) =>
      string(item, at("stop_sequences", index)),
    );
  }
  return out;
}

/**
 * `metadata.user_id` → `user`. Metadata with more than user_id (none today) also goes whole to the extension, so the
 * Anthropic translator, which lets the extension's fields win, gets all of it back.
 */
function userOf(value: unknown, anthropic: Json): { user?: string } {
  const metadata = optionalRecord(value, "metadata");
  if (!metadata) return {};
  if (extras(metadata, ["user_id"])) anthropic.metadata = metadata;
  const user = optionalString(metadata.user_id, "metadata.user_id");
  return user === undefined ? {} : { user };
}

interface FunctionTool {
  type: "function";
  function: { name: string; description?: string; parameters: Json; strict?: boolean };
  cache_control?: unknown;
  anthropic?: Json;
}

type ToolChoice = "auto" | "required" | "none" | { type: "function"; function: { name: string } };

interface ToolFields {
  tools?: FunctionTool[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: false;
}

/**
 * `tools` and `tool_choice`. Client tools become functions; server tools (web search, code execution, …; any tool
 * with a `type` other than custom) only Anthropic runs, so they go to `anthropic.tools`. OpenAI refuses a
 * tool_choice without tools, so with no function tool the tool_choice goes to the extension as it came.
 */
function toolsOf(params: Json, anthropic: Json): ToolFields {
  const functions: FunctionTool[] = [];
  const serverTools: Json[] = [];
  if (!isAbsent(params.tools)) {
    array(params.tools, "tools").forEach((item, index) => {
      const path = at("tools", index);
      const tool = record(item, path);
      if (isAbsent(tool.type) || tool.type === "custom") functions.push(functionTool(tool, path));
      else serverTools.push(tool);
    });
  }
  if (serverTools.length) anthropic.tools = serverTools;
  const choice = optionalRecord(params.tool_choice, "tool_choice");
  if (!functions.length) {
    if (choice) anthropic.tool_choice = choice;
    return {};
  }
  return { tools: functions, ...(choice ? toolChoiceOf(choice) : {}) };
}

function functionTool(tool: Json, path: string): FunctionTool {
  const fn: FunctionTool["function"] = {
    name: string(tool.name, at(path, "name")),
    parameters: record(tool.input_schema, at(path, "input_schema")),
  };
  const description = optionalString(tool.description, at(path, "description"));
  if (description !== undefined) fn.description = description;
  const strict = optionalBoolean(tool.strict, at(path, "strict"));
  if (strict !== undefined) fn.strict = strict;
  const entry: FunctionTool = { type: "function", function: fn };
  if (!isAbsent(tool.cache_control)) entry.cache_control = tool.cache_control;
  // defer_loading, allowed_callers, input_examples, eager_input_streaming: Anthropic's alone.
  const rest = extras(tool, ["type", "name", "input_schema", "description", "strict", "cache_control"]);
  if (rest) entry.anthropic = rest;
  return entry;
}

function toolChoiceOf(choice: Json): Pick<ToolFields, "tool_choice" | "parallel_tool_calls"> {
  const type = string(choice.type, "tool_choice.type");
  const mode = toolChoiceModes.get(type);
  let toolChoice: ToolChoice;
  if (mode) toolChoice = mode;
  else if (type === "tool")
    toolChoice = { type: "function", function: { name: string(choice.name, "tool_choice.name") } };
  else return invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'");
  const disableParallel = optionalBoolean(choice.disable_parallel_tool_use, "tool_choice.disable_parallel_tool_use");
  return disableParallel ? { tool_choice: toolChoice, parallel_tool_calls: false } : { tool_choice: toolChoice };
}
