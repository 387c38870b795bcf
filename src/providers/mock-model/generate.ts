/**
 * What the mock model "decides" for a chat request, before it is dressed in any API's shape: per choice the text or
 * the forced tool call, why it stopped and how many tokens it took. Deterministic: the same request always produces
 * the same generation.
 */
import { isRecord } from "../../is-record.ts";
import { countPromptTokens, countTextTokens, plainText, tokenizerModule } from "../../tokens.ts";
import type { ChatCompletionRequest } from "../provider.ts";
import { sampleFromSchema } from "./schema-sample.ts";
import { createRandom, hashString } from "./seeded.ts";
import { mockText, userWords } from "./text.ts";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** What the model "decided" for one choice; cached, then dressed as a completion or as chunks. */
export interface GeneratedChoice {
  content: string | null;
  toolCalls: ToolCall[] | undefined;
  finishReason: "stop" | "length" | "tool_calls";
  completionTokens: number;
}

export interface Generation {
  promptTokens: number;
  choices: GeneratedChoice[];
}

interface FunctionTool {
  name: string;
  parameters: unknown;
}

/** The function tool the request forces, if any: `tool_choice: "required"` (the first) or a named function. */
function forcedTool(body: ChatCompletionRequest): FunctionTool | undefined {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const functions: FunctionTool[] = [];
  for (const tool of tools) {
    if (
      isRecord(tool) &&
      tool.type === "function" &&
      isRecord(tool.function) &&
      typeof tool.function.name === "string"
    ) {
      functions.push({ name: tool.function.name, parameters: tool.function.parameters });
    }
  }
  const choice = body.tool_choice;
  if (choice === "required") return functions[0];
  if (isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === "string") {
    const name = choice.function.name;
    return functions.find((tool) => tool.name === name);
  }
  return undefined;
}

function truncateToTokens(text: string, maxTokens: number | undefined): { text: string; tokens: number; cut: boolean } {
  const { encode, decode } = tokenizerModule();
  const tokens = encode(text, plainText);
  if (maxTokens === undefined || tokens.length <= maxTokens) return { text, tokens: tokens.length, cut: false };
  return { text: decode(tokens.slice(0, maxTokens)), tokens: maxTokens, cut: true };
}

function generateChoice(body: ChatCompletionRequest, seed: number, index: number): GeneratedChoice {
  const random = createRandom(seed + index * 0x9e3779b9);
  const tool = forcedTool(body);
  if (tool) {
    const parameters = tool.parameters ?? { type: "object", properties: {} };
    const args = JSON.stringify(sampleFromSchema(parameters, random));
    const id = `call_${(seed >>> 0).toString(36)}${index}${Math.floor(random() * 1e9).toString(36)}`;
    return {
      content: null,
      toolCalls: [{ id, type: "function", function: { name: tool.name, arguments: args } }],
      finishReason: "tool_calls",
      completionTokens: countTextTokens(tool.name) + countTextTokens(args),
    };
  }
  const format = body.response_format;
  let text: string;
  if (format?.type === "json_schema") {
    text = JSON.stringify(sampleFromSchema(format.json_schema?.schema ?? {}, random));
  } else if (format?.type === "json_object") {
    text = JSON.stringify({ answer: mockText(random, userWords(body.messages)), mock: true });
  } else {
    text = mockText(random, userWords(body.messages));
  }
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const truncated = truncateToTokens(text, maxTokens === null ? undefined : maxTokens);
  return {
    content: truncated.text,
    toolCalls: undefined,
    finishReason: truncated.cut ? "length" : "stop",
    completionTokens: truncated.tokens,
  };
}

/**
 * Generations keyed by everything that changes them. Benchmarks send the same few bodies again and again, and the
 * tokenizer is the only costly step, so a small bounded map keeps the mock's hot path cheap.
 */
const generationCache = new Map<string, Generation>();
const generationCacheSize = 2000;

export function generate(body: ChatCompletionRequest): Generation {
  const key = JSON.stringify([
    body.messages,
    body.response_format ?? null,
    body.tools ?? null,
    body.tool_choice ?? null,
    body.n ?? 1,
    body.max_tokens ?? null,
    body.max_completion_tokens ?? null,
  ]);
  const cached = generationCache.get(key);
  if (cached) return cached;
  const seed = hashString(key);
  const n = typeof body.n === "number" && body.n > 1 ? body.n : 1;
  const generation: Generation = {
    promptTokens: countPromptTokens(body.messages, body.tools),
    choices: Array.from({ length: n }, (_, index) => generateChoice(body, seed, index)),
  };
  if (generationCache.size >= generationCacheSize) {
    // Map iterates in insertion order: dropping the first key is FIFO eviction, enough for a test double.
    const oldest = generationCache.keys().next().value;
    if (oldest !== undefined) generationCache.delete(oldest);
  }
  generationCache.set(key, generation);
  return generation;
}
