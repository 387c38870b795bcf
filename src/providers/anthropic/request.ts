/**
 * An OpenAI chat completion request → the body of Anthropic's POST /v1/messages (the non-streaming shape; the
 * caller sets `stream`). Pure: no I/O, and every field it cannot send faithfully is a 400 naming that field.
 *
 * Dropped silently, because Anthropic has no equivalent and leaving them out does not change what the answer is
 * about (the README says so): frequency_penalty, presence_penalty, logit_bias, seed, store, metadata (OpenAI's:
 * stored-completion tags), service_tier (OpenAI's tiers), stream_options (usage always comes with an Anthropic
 * stream), prediction, reasoning_effort (send the `thinking` extension instead), and any other field this module
 * does not read (parallel_tool_calls aside, which is read below).
 *
 * Refused with a 400, because silently dropping them would change the answer: n > 1, logprobs / top_logprobs,
 * audio and non-text modalities, the deprecated functions / function_call, web_search_options.
 */
import type {
  MessageCreateParamsNonStreaming,
  ThinkingConfigParam,
  Tool,
  ToolChoice,
} from "@anthropic-ai/sdk/resources/messages";
import { isRecord } from "../../is-record.ts";
import type { ChatCompletionRequest } from "../provider.ts";
import { cacheControlOf } from "./content.ts";
import { at, invalid } from "./invalid.ts";
import { toConversation } from "./messages.ts";

/**
 * The SDK's params plus the sampling fields. SDK 1.x (API version 2026-10-21) dropped `temperature`, `top_p` and
 * `top_k` from its types; API version 2023-06-01 takes them, so they are typed here, where they are sent.
 */
export type AnthropicParams = MessageCreateParamsNonStreaming & { temperature?: number; top_p?: number };

export interface AnthropicRequest {
  params: AnthropicParams;
  /** Set when `response_format` asked for JSON: the forced tool whose input is the answer. */
  structuredOutput?: { tool: string };
}

export interface RequestOptions {
  /** `max_tokens` when the request sets none: Anthropic requires one. */
  defaultMaxTokens: number;
}

type Json = Record<string, unknown>;
const isSet = (value: unknown): boolean => value !== undefined && value !== null;

export function toAnthropicRequest(body: ChatCompletionRequest, options: RequestOptions): AnthropicRequest {
  refuseUnmappable(body);
  const tools = toolsOf(body.tools);
  const structured = structuredOutputOf(body.response_format, tools.length > 0);
  const params: AnthropicParams = {
    model: body.model,
    max_tokens: body.max_completion_tokens ?? body.max_tokens ?? options.defaultMaxTokens,
    ...toConversation(body.messages),
    ...sampling(body),
    ...stopSequences(body.stop),
    ...userMetadata(body),
    ...(structured ? forcedTool(structured) : toolParams(tools, body)),
    ...thinking(body.thinking),
  };
  const merged = withExtension(params, body.anthropic);
  return structured ? { params: merged, structuredOutput: { tool: structured.name } } : { params: merged };
}

function refuseUnmappable(body: ChatCompletionRequest): void {
  if (typeof body.n === "number" && body.n > 1) invalid("n", "Anthropic returns one choice per call; n must be 1");
  if (body.logprobs === true) invalid("logprobs", "Anthropic does not return log probabilities");
  if (isSet(body.top_logprobs) && body.top_logprobs !== 0) {
    invalid("top_logprobs", "Anthropic does not return log probabilities");
  }
  if (isSet(body.audio)) invalid("audio", "Anthropic does not produce audio");
  if (Array.isArray(body.modalities) && body.modalities.some((modality) => modality !== "text")) {
    invalid("modalities", "Anthropic produces text only");
  }
  if (isSet(body.functions)) invalid("functions", "the deprecated functions are not translated; send tools");
  if (isSet(body.function_call)) invalid("function_call", "the deprecated function_call is not translated");
  if (isSet(body.web_search_options)) invalid("web_search_options", "has no Anthropic equivalent here");
}

/**
 * Anthropic's temperature runs from 0 to 1, OpenAI's to 2. A value above 1 is refused rather than clamped or
 * rescaled: either would quietly answer a different question than the one asked.
 */
function sampling(body: ChatCompletionRequest): { temperature?: number; top_p?: number } {
  const out: { temperature?: number; top_p?: number } = {};
  if (isSet(body.temperature)) {
    const temperature = body.temperature;
    if (typeof temperature !== "number") invalid("temperature", "must be a number");
    if (temperature < 0 || temperature > 1) {
      invalid("temperature", `Anthropic accepts a temperature from 0 to 1, not ${temperature}`);
    }
    out.temperature = temperature;
  }
  if (isSet(body.top_p)) {
    if (typeof body.top_p !== "number") invalid("top_p", "must be a number");
    out.top_p = body.top_p;
  }
  return out;
}

function stopSequences(stop: unknown): { stop_sequences?: string[] } {
  if (!isSet(stop)) return {};
  const list = typeof stop === "string" ? [stop] : stop;
  if (!Array.isArray(list) || !list.every((item): item is string => typeof item === "string")) {
    invalid("stop", "must be a string or an array of strings");
  }
  return list.length ? { stop_sequences: list } : {};
}

/** OpenAI's `user` (or its successor `safety_identifier`) is what Anthropic's `metadata.user_id` is for. */
function userMetadata(body: ChatCompletionRequest): { metadata?: { user_id: string } } {
  const user = typeof body.user === "string" ? body.user : body.safety_identifier;
  return typeof user === "string" && user !== "" ? { metadata: { user_id: user } } : {};
}

function toolsOf(value: unknown): Tool[] {
  if (!isSet(value)) return [];
  if (!Array.isArray(value)) invalid("tools", "must be an array");
  return value.map((tool, i) => toolOf(tool, at("tools", i)));
}

function toolOf(tool: unknown, path: string): Tool {
  if (!isRecord(tool)) invalid(path, "must be a tool object");
  if (tool.type !== "function") {
    invalid(at(path, "type"), `only function tools can be sent to Anthropic, not ${JSON.stringify(tool.type)}`);
  }
  const fn = tool.function;
  const fnPath = at(path, "function");
  if (!isRecord(fn)) invalid(fnPath, "must be an object");
  if (typeof fn.name !== "string") invalid(at(fnPath, "name"), "must be a string");
  const parameters = fn.parameters ?? { type: "object", properties: {} };
  if (!isRecord(parameters)) invalid(at(fnPath, "parameters"), "must be a JSON Schema object");
  // Anthropic requires the schema's type; OpenAI lets `{}` stand for "no parameters".
  const schema = { type: "object", ...parameters };
  const cacheControl = cacheControlOf(tool, path);
  return {
    name: fn.name,
    ...(typeof fn.description === "string" && { description: fn.description }),
    input_schema: schema as Tool.InputSchema,
    // OpenAI's strict function calling and Anthropic's strict tool use make the same promise.
    ...(fn.strict === true && { strict: true }),
    ...(cacheControl && { cache_control: cacheControl }),
  };
}

/** `tools` and `tool_choice`; a choice without tools is left out (Anthropic has nothing for it to choose from). */
function toolParams(tools: Tool[], body: ChatCompletionRequest): { tools?: Tool[]; tool_choice?: ToolChoice } {
  if (tools.length === 0) return {};
  const choice = toolChoiceOf(body.tool_choice, body.parallel_tool_calls === false);
  return choice ? { tools, tool_choice: choice } : { tools };
}

function toolChoiceOf(value: unknown, serial: boolean): ToolChoice | undefined {
  const choice = isSet(value) ? namedChoice(value) : undefined;
  // OpenAI's parallel_tool_calls: false is Anthropic's disable_parallel_tool_use, which lives on the choice.
  if (!serial) return choice;
  if (!choice) return { type: "auto", disable_parallel_tool_use: true };
  return choice.type === "none" ? choice : { ...choice, disable_parallel_tool_use: true };
}

function namedChoice(value: unknown): ToolChoice {
  if (value === "auto") return { type: "auto" };
  if (value === "required") return { type: "any" };
  if (value === "none") return { type: "none" };
  if (isRecord(value) && value.type === "function" && isRecord(value.function)) {
    const name = value.function.name;
    if (typeof name !== "string") invalid("tool_choice.function.name", "must be a string");
    return { type: "tool", name };
  }
  return invalid("tool_choice", 'must be "auto", "required", "none" or {type: "function", function: {name}}');
}

/**
 * `response_format` asking for JSON becomes a tool the model is made to call, whose input is the answer; the
 * response and stream translations turn that call back into content. Undefined for text (or no format).
 */
function structuredOutputOf(format: unknown, hasTools: boolean): Tool | undefined {
  if (!isSet(format)) return undefined;
  if (!isRecord(format)) invalid("response_format", "must be an object");
  if (format.type === "text") return undefined;
  if (hasTools) {
    invalid("response_format", "cannot be combined with tools in one Anthropic call: it is sent as a forced tool");
  }
  if (format.type === "json_object") return { name: "json_object", input_schema: { type: "object" } };
  if (format.type === "json_schema") return jsonSchemaTool(format.json_schema);
  return invalid("response_format.type", 'must be "text", "json_object" or "json_schema"');
}

function jsonSchemaTool(jsonSchema: unknown): Tool {
  const path = "response_format.json_schema";
  if (!isRecord(jsonSchema)) invalid(path, "must be an object");
  if (typeof jsonSchema.name !== "string") invalid(at(path, "name"), "must be a string");
  const schema = jsonSchema.schema ?? { type: "object" };
  if (!isRecord(schema)) invalid(at(path, "schema"), "must be a JSON Schema object");
  return {
    name: jsonSchema.name,
    ...(typeof jsonSchema.description === "string" && { description: jsonSchema.description }),
    input_schema: schema as Tool.InputSchema,
    ...(jsonSchema.strict === true && { strict: true }),
  };
}

function forcedTool(tool: Tool): { tools: Tool[]; tool_choice: ToolChoice } {
  return { tools: [tool], tool_choice: { type: "tool", name: tool.name } };
}

/** The `thinking` extension: Anthropic's own config, passed through. */
function thinking(value: unknown): { thinking?: ThinkingConfigParam } {
  if (!isSet(value)) return {};
  if (!isRecord(value)) invalid("thinking", "must be an object (Anthropic's thinking config)");
  return { thinking: value as unknown as ThinkingConfigParam };
}

/**
 * The `anthropic` extension: Anthropic-only request fields (top_k, metadata, service_tier…) set by the
 * Anthropic-compatible entry point, merged last so they win. `stream` stays the caller's to set. Its `tools` are
 * server tools (web search, code execution), which join the function tools after them instead of replacing them.
 */
function withExtension(params: AnthropicParams, extension: unknown): AnthropicParams {
  if (!isSet(extension)) return params;
  if (!isRecord(extension)) invalid("anthropic", "must be an object of Anthropic request fields");
  const { stream: _stream, tools: serverTools, ...fields }: Json = extension;
  const merged = { ...params, ...fields } as AnthropicParams;
  if (!isSet(serverTools)) return merged;
  if (!Array.isArray(serverTools)) invalid("anthropic.tools", "must be an array of Anthropic tools");
  return { ...merged, tools: [...(params.tools ?? []), ...(serverTools as Tool[])] };
}
