/**
 * What Anthropic answers 400 (`invalid_request_error`) to in a Messages or count_tokens request, worded the way the
 * API words it: the field's path, then what is wrong (`max_tokens: Field required`). Fields are the ones SDK
 * 1.17.0's types know; anything else is an extra input, which the API refuses (an OpenAI field leaking through a
 * translator is caught). `temperature`, `top_p` and `top_k` exist only up to API version 2023-06-01.
 */
import { isRecord } from "../is-record.ts";
import {
  checkCacheControl,
  checkMessages,
  checkSystem,
  countCacheMarkers,
  extraInputs,
  isVersion2026,
  tagError,
} from "./anthropic-validate-messages.ts";

type Check = string | undefined;

/** The body fields of `MessageCreateParamsBase` (SDK 1.17.0; `user_profile_id` and `workspace_id` are headers). */
const createFields = [
  "model",
  "max_tokens",
  "messages",
  "cache_control",
  "container",
  "diagnostics",
  "inference_geo",
  "metadata",
  "output_config",
  "service_tier",
  "speed",
  "stop_sequences",
  "stream",
  "system",
  "thinking",
  "tool_choice",
  "tools",
];
const countTokensFields = [
  "model",
  "messages",
  "cache_control",
  "output_config",
  "speed",
  "system",
  "thinking",
  "tool_choice",
  "tools",
];
const samplingFields = ["temperature", "top_p", "top_k"];

const thinkingTypes = ["enabled", "disabled", "adaptive", "between_tools"];
const toolChoiceTypes = ["auto", "any", "tool", "none"];
const customToolFields = [
  "type",
  "name",
  "description",
  "input_schema",
  "cache_control",
  "allowed_callers",
  "defer_loading",
  "eager_input_streaming",
  "input_examples",
  "strict",
];
const toolNamePattern = /^[a-zA-Z0-9_-]{1,128}$/;
/** Anthropic's own tools are typed with a dated version (`web_search_20250305`, `bash_20250124`, …): taken as such. */
const versionedToolType = /^[a-z_]+_\d{8}$/;
const knownToolTypes = [
  "custom",
  "bash_20250124",
  "memory_20250818",
  "text_editor_20250728",
  "web_fetch_20250910",
  "web_search_20250305",
];

export interface ValidationOptions {
  /** The request's `anthropic-version`, already known to be one the API takes. */
  version: string;
  /** `POST /v1/messages/count_tokens`: no `max_tokens`, no `stream` or stop sequences. */
  countTokens: boolean;
}

const isInteger = (value: unknown): value is number => typeof value === "number" && Number.isInteger(value);

function checkRange(body: Record<string, unknown>, key: string, min: number, max: number, integer = false): Check {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || (integer && !Number.isInteger(value))) {
    return `${key}: Input should be a valid ${integer ? "integer" : "number"}`;
  }
  if (value < min) return `${key}: Input should be greater than or equal to ${min}`;
  if (value > max) return `${key}: Input should be less than or equal to ${max}`;
  return undefined;
}

function checkTools(value: unknown): { error?: string; names: string[] } {
  if (value === undefined) return { names: [] };
  if (!Array.isArray(value)) return { error: "tools: Input should be a valid list", names: [] };
  const names: string[] = [];
  for (const [index, tool] of value.entries()) {
    const path = `tools.${index}`;
    if (!isRecord(tool)) return { error: `${path}: Input should be a valid dictionary`, names };
    const type = tool.type;
    if (type !== undefined && type !== null && type !== "custom") {
      if (typeof type !== "string" || !versionedToolType.test(type)) {
        return { error: tagError(path, type, knownToolTypes), names };
      }
      if (typeof tool.name === "string") names.push(tool.name);
      continue;
    }
    const schema = tool.input_schema;
    const error =
      extraInputs(tool, customToolFields, `${path}.custom.`) ??
      (tool.name === undefined ? `${path}.custom.name: Field required` : undefined) ??
      (typeof tool.name !== "string" || !toolNamePattern.test(tool.name)
        ? `${path}.custom.name: String should match pattern '${toolNamePattern.source}'`
        : undefined) ??
      (schema === undefined ? `${path}.custom.input_schema: Field required` : undefined) ??
      (!isRecord(schema) ? `${path}.custom.input_schema: Input should be a valid dictionary` : undefined) ??
      (isRecord(schema) && schema.type !== "object"
        ? `${path}.custom.input_schema.type: Input should be 'object'`
        : undefined) ??
      (tool.description !== undefined && typeof tool.description !== "string"
        ? `${path}.custom.description: Input should be a valid string`
        : undefined) ??
      checkCacheControl(tool.cache_control, `${path}.custom.cache_control`);
    if (error) return { error, names };
    names.push(tool.name as string);
  }
  if (new Set(names).size !== names.length) return { error: "tools: Tool names must be unique.", names };
  return { names };
}

function checkToolChoice(value: unknown, tools: readonly string[]): Check {
  if (value === undefined) return undefined;
  if (!isRecord(value)) return "tool_choice: Input should be a valid dictionary";
  const type = value.type;
  if (typeof type !== "string" || !toolChoiceTypes.includes(type))
    return tagError("tool_choice", type, toolChoiceTypes);
  const allowed =
    type === "none"
      ? ["type"]
      : type === "tool"
        ? ["type", "name", "disable_parallel_tool_use"]
        : ["type", "disable_parallel_tool_use"];
  const extra = extraInputs(value, allowed, `tool_choice.${type}.`);
  if (extra) return extra;
  if (value.disable_parallel_tool_use !== undefined && typeof value.disable_parallel_tool_use !== "boolean") {
    return `tool_choice.${type}.disable_parallel_tool_use: Input should be a valid boolean`;
  }
  if ((type === "any" || type === "tool") && tools.length === 0) {
    return "tool_choice: tool_choice may only be specified while providing tools.";
  }
  if (type === "tool") {
    if (typeof value.name !== "string") return "tool_choice.tool.name: Field required";
    if (!tools.includes(value.name)) return `tool_choice.tool.name: Tool '${value.name}' not found in provided tools`;
  }
  return undefined;
}

function checkThinking(body: Record<string, unknown>, options: ValidationOptions): Check {
  const thinking = body.thinking;
  if (thinking === undefined) return undefined;
  if (!isRecord(thinking)) return "thinking: Input should be a valid dictionary";
  const type = thinking.type;
  if (typeof type !== "string" || !thinkingTypes.includes(type)) return tagError("thinking", type, thinkingTypes);
  const path = `thinking.${type}.`;
  const fields =
    type === "enabled" ? ["type", "budget_tokens", "display"] : type === "adaptive" ? ["type", "display"] : ["type"];
  const extra = extraInputs(thinking, fields, path);
  if (extra) return extra;
  if (
    thinking.display !== undefined &&
    thinking.display !== null &&
    thinking.display !== "summarized" &&
    thinking.display !== "omitted"
  ) {
    return `${path}display: Input should be 'summarized' or 'omitted'`;
  }
  if (type === "enabled") {
    const budget = thinking.budget_tokens;
    if (budget === undefined) return `${path}budget_tokens: Field required`;
    if (!isInteger(budget)) return `${path}budget_tokens: Input should be a valid integer`;
    if (budget < 1024) return `${path}budget_tokens: Input should be greater than or equal to 1024`;
    if (!options.countTokens && isInteger(body.max_tokens) && body.max_tokens <= budget) {
      return "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size";
    }
  }
  if (type === "enabled" || type === "adaptive") {
    const choice = body.tool_choice;
    if (isRecord(choice) && (choice.type === "any" || choice.type === "tool")) {
      return "Thinking may not be enabled when tool_choice forces tool use.";
    }
    if (body.temperature !== undefined && body.temperature !== 1) {
      return "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility";
    }
  }
  return undefined;
}

function checkOutputConfig(value: unknown): Check {
  if (value === undefined) return undefined;
  if (!isRecord(value)) return "output_config: Input should be a valid dictionary";
  const extra = extraInputs(value, ["effort", "format"], "output_config.");
  if (extra) return extra;
  const efforts = ["low", "medium", "high", "xhigh", "max"];
  if (value.effort !== undefined && value.effort !== null && !efforts.includes(String(value.effort))) {
    return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'";
  }
  const format = value.format;
  if (format === undefined || format === null) return undefined;
  if (!isRecord(format) || format.type !== "json_schema") {
    return tagError("output_config.format", isRecord(format) ? format.type : undefined, ["json_schema"]);
  }
  if (!isRecord(format.schema)) return "output_config.format.json_schema.schema: Input should be a valid dictionary";
  return extraInputs(format, ["type", "schema"], "output_config.format.json_schema.");
}

function checkMisc(body: Record<string, unknown>): Check {
  const { stop_sequences: stops, metadata } = body;
  if (stops !== undefined) {
    if (!Array.isArray(stops)) return "stop_sequences: Input should be a valid list";
    const index = stops.findIndex((stop) => typeof stop !== "string");
    if (index !== -1) return `stop_sequences.${index}: Input should be a valid string`;
  }
  if (body.stream !== undefined && typeof body.stream !== "boolean") return "stream: Input should be a valid boolean";
  if (metadata !== undefined) {
    if (!isRecord(metadata)) return "metadata: Input should be a valid dictionary";
    const extra = extraInputs(metadata, ["user_id"], "metadata.");
    if (extra) return extra;
    if (metadata.user_id !== undefined && metadata.user_id !== null && typeof metadata.user_id !== "string") {
      return "metadata.user_id: Input should be a valid string";
    }
  }
  if (body.service_tier !== undefined && body.service_tier !== "auto" && body.service_tier !== "standard_only") {
    return "service_tier: Input should be 'auto' or 'standard_only'";
  }
  if (body.speed !== undefined && body.speed !== null && body.speed !== "standard" && body.speed !== "fast") {
    return "speed: Input should be 'standard' or 'fast'";
  }
  return undefined;
}

/** The message of Anthropic's 400 for this request, or undefined when the API would take it. */
export function validateMessagesRequest(body: unknown, options: ValidationOptions): string | undefined {
  if (!isRecord(body)) return "body: Input should be a valid dictionary";
  const sampling = isVersion2026(options.version) || options.countTokens ? [] : samplingFields;
  const fields = options.countTokens ? countTokensFields : [...createFields, ...sampling];
  const tools = checkTools(body.tools);
  const markers = countCacheMarkers(body);
  return (
    (body.model === undefined ? "model: Field required" : undefined) ??
    (typeof body.model !== "string" ? "model: Input should be a valid string" : undefined) ??
    (body.model === "" ? "model: String should have at least 1 character" : undefined) ??
    (!options.countTokens && body.max_tokens === undefined ? "max_tokens: Field required" : undefined) ??
    checkRange(body, "max_tokens", 1, Number.MAX_SAFE_INTEGER, true) ??
    extraInputs(body, fields, "") ??
    checkMessages(body.messages, options.version) ??
    checkSystem(body.system) ??
    tools.error ??
    checkToolChoice(body.tool_choice, tools.names) ??
    checkCacheControl(body.cache_control, "cache_control") ??
    (markers > 4 ? `A maximum of 4 blocks with cache_control may be provided. Found ${markers}.` : undefined) ??
    checkRange(body, "temperature", 0, 1) ??
    checkRange(body, "top_p", 0, 1) ??
    checkRange(body, "top_k", 0, Number.MAX_SAFE_INTEGER, true) ??
    checkThinking(body, options) ??
    checkOutputConfig(body.output_config) ??
    checkMisc(body)
  );
}
