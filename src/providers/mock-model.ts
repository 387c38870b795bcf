/**
 * Deterministic stand-in for OpenAI's models, shared by the mock HTTP server and the in-process mock provider.
 * The same request always produces the same content (ids and timestamps still vary, as OpenAI's do), so tests can
 * assert on answers and caches can be checked for hits. Every answer has OpenAI's wire shape, validated in tests
 * against OpenAI's own OpenAPI document.
 */
import { countPromptTokens, countTextTokens, messageText, plainText, tokenizerModule } from "../tokens.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatMessage,
  EmbeddingRequest,
  EmbeddingResponse,
  ModelList,
  Usage,
} from "./provider.ts";

/** A request the mock refuses, in the terms of OpenAI's 400 answer. */
export interface InvalidRequest {
  message: string;
  param: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Hashing and pseudo-randomness: cheap, stable across runs and platforms.

/** FNV-1a, 32 bits: fast and good enough to pick words; not for anything security-related. */
function hashString(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(items: readonly T[], random: () => number): T => items[Math.floor(random() * items.length)] as T;

// ---------------------------------------------------------------------------------------------------------------
// Request validation (what OpenAI answers 400 to, in the parts the mock reads)

const roles = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 1;

export function validateChatCompletionRequest(body: unknown): InvalidRequest | undefined {
  if (!isRecord(body)) return { message: "The request body must be a JSON object.", param: null };
  if (typeof body.model !== "string" || body.model === "") {
    return { message: "you must provide a model parameter", param: "model" };
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return { message: "'messages' must be a non-empty array of messages.", param: "messages" };
  }
  for (const [index, message] of body.messages.entries()) {
    if (!isRecord(message) || typeof message.role !== "string" || !roles.has(message.role)) {
      return { message: `Invalid value for 'messages[${index}].role'.`, param: `messages[${index}].role` };
    }
  }
  for (const field of ["max_tokens", "max_completion_tokens"] as const) {
    if (body[field] !== undefined && body[field] !== null && !isPositiveInteger(body[field])) {
      return { message: `Invalid '${field}': expected an integer of at least 1.`, param: field };
    }
  }
  if (body.n !== undefined && body.n !== null && (!isPositiveInteger(body.n) || body.n > 128)) {
    return { message: "Invalid 'n': expected an integer from 1 to 128.", param: "n" };
  }
  return undefined;
}

export function validateEmbeddingRequest(body: unknown): InvalidRequest | undefined {
  if (!isRecord(body)) return { message: "The request body must be a JSON object.", param: null };
  if (typeof body.model !== "string" || body.model === "") {
    return { message: "you must provide a model parameter", param: "model" };
  }
  const input = body.input;
  const isTokens = (value: unknown) =>
    Array.isArray(value) && value.length > 0 && value.every((token) => Number.isInteger(token) && token >= 0);
  const valid =
    (typeof input === "string" && input !== "") ||
    (Array.isArray(input) &&
      input.length > 0 &&
      (input.every((item) => typeof item === "string" && item !== "") || isTokens(input) || input.every(isTokens)));
  if (!valid) {
    return {
      message: "'input' must be a non-empty string, an array of non-empty strings, or token arrays.",
      param: "input",
    };
  }
  if (body.dimensions !== undefined && (!isPositiveInteger(body.dimensions) || body.dimensions > 3072)) {
    return { message: "Invalid 'dimensions': expected an integer from 1 to 3072.", param: "dimensions" };
  }
  if (body.encoding_format !== undefined && body.encoding_format !== "float" && body.encoding_format !== "base64") {
    return { message: "Invalid 'encoding_format': expected 'float' or 'base64'.", param: "encoding_format" };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Text

const vocabulary = [
  "clear",
  "concise",
  "answer",
  "model",
  "request",
  "result",
  "context",
  "simple",
  "steady",
  "useful",
  "careful",
  "detail",
  "summary",
  "signal",
  "pattern",
  "value",
  "system",
  "reply",
  "example",
  "outline",
  "insight",
  "balance",
  "option",
  "measure",
  "focus",
  "brief",
  "logic",
  "evidence",
  "point",
  "theme",
  "question",
  "approach",
] as const;

function userWords(messages: readonly ChatMessage[]): string[] {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== "user") continue;
    return (
      messageText(message.content)
        .match(/[\p{L}\p{N}]{3,}/gu)
        ?.slice(0, 64) ?? []
    );
  }
  return [];
}

function mockText(random: () => number, words: readonly string[]): string {
  const count = 8 + Math.floor(random() * 17);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    // Alternate between the user's own words and the fixed list, so answers visibly relate to their prompt.
    parts.push(words.length > 0 && random() < 0.35 ? pick(words, random) : pick(vocabulary, random));
  }
  return `Mock answer: ${parts.join(" ")}.`;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON from a JSON Schema (structured output and tool arguments)

const maxSchemaDepth = 8;

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith("#")) return {};
  let node: unknown = root;
  for (const raw of ref.slice(1).split("/").filter(Boolean)) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    node = isRecord(node) ? node[key] : undefined;
  }
  return node ?? {};
}

function sampleString(schema: Record<string, unknown>, random: () => number): string {
  switch (schema.format) {
    case "date-time":
      return "2024-01-01T00:00:00Z";
    case "date":
      return "2024-01-01";
    case "time":
      return "12:00:00Z";
    case "email":
      return "mock@example.com";
    case "uri":
    case "url":
      return "https://example.com/mock";
    case "uuid": {
      const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
    }
  }
  let text = `${pick(vocabulary, random)} ${pick(vocabulary, random)}`;
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : Number.POSITIVE_INFINITY;
  while (text.length < minLength) text += ` ${pick(vocabulary, random)}`;
  return text.length > maxLength ? text.slice(0, maxLength) : text;
}

function sampleNumber(schema: Record<string, unknown>, random: () => number, integer: boolean): number {
  const num = (value: unknown) => (typeof value === "number" ? value : undefined);
  const exclusiveMin = num(schema.exclusiveMinimum);
  const exclusiveMax = num(schema.exclusiveMaximum);
  let low = num(schema.minimum) ?? (exclusiveMin === undefined ? 0 : exclusiveMin + (integer ? 1 : 1e-6));
  let high = num(schema.maximum) ?? (exclusiveMax === undefined ? low + 100 : exclusiveMax - (integer ? 1 : 1e-6));
  if (integer) {
    low = Math.ceil(low);
    high = Math.floor(high);
  }
  if (high < low) return low;
  const value = low + random() * (high - low);
  return integer ? Math.round(value) : Math.round(value * 100) / 100;
}

/** The schema's types, first the non-null ones (an optional field gets a value rather than null). */
function schemaTypes(schema: Record<string, unknown>): string[] {
  const declared = Array.isArray(schema.type) ? schema.type : typeof schema.type === "string" ? [schema.type] : [];
  const types = declared.filter((type): type is string => typeof type === "string");
  if (types.length > 0) return [...types.filter((type) => type !== "null"), ...types.filter((type) => type === "null")];
  if (isRecord(schema.properties) || Array.isArray(schema.required)) return ["object"];
  if (schema.items !== undefined || schema.prefixItems !== undefined) return ["array"];
  return ["string"];
}

/** A value satisfying `schema` (for the subset of JSON Schema that structured output and tools use). */
function sampleFromSchema(schema: unknown, random: () => number, root: unknown = schema, depth = 0): unknown {
  if (!isRecord(schema)) return schema === false ? null : {};
  if (typeof schema.$ref === "string") return sampleFromSchema(resolveRef(root, schema.$ref), random, root, depth + 1);
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return pick(schema.enum, random);
  for (const key of ["anyOf", "oneOf"] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      // The first branch, unless it is only `null` and another exists: a value is more useful than null.
      const branch = branches.find((item) => !(isRecord(item) && item.type === "null")) ?? branches[0];
      return sampleFromSchema(branch, random, root, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    // Merge the parts into one schema; their properties and required lists add up.
    const { allOf, ...rest } = schema;
    let merged: Record<string, unknown> = rest;
    const properties: Record<string, unknown> = {};
    const required: unknown[] = [];
    for (const part of [...allOf, rest]) {
      const resolved = isRecord(part) && typeof part.$ref === "string" ? resolveRef(root, part.$ref) : part;
      if (!isRecord(resolved)) continue;
      merged = { ...merged, ...resolved };
      if (isRecord(resolved.properties)) Object.assign(properties, resolved.properties);
      if (Array.isArray(resolved.required)) required.push(...resolved.required);
    }
    const { $ref: _ref, ...withoutRef } = merged;
    return sampleFromSchema({ ...withoutRef, properties, required }, random, root, depth + 1);
  }

  const type = schemaTypes(schema)[0];
  switch (type) {
    case "null":
      return null;
    case "boolean":
      return random() < 0.5;
    case "integer":
    case "number":
      return sampleNumber(schema, random, type === "integer");
    case "string":
      return sampleString(schema, random);
    case "array": {
      const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
      const minItems = typeof schema.minItems === "number" ? schema.minItems : 1;
      const maxItems = typeof schema.maxItems === "number" ? schema.maxItems : Number.POSITIVE_INFINITY;
      const count = Math.min(Math.max(minItems, prefix.length, depth >= maxSchemaDepth ? 0 : 1), maxItems);
      const items: unknown[] = [];
      for (let i = 0; i < count; i++) {
        items.push(sampleFromSchema(prefix[i] ?? schema.items ?? {}, random, root, depth + 1));
      }
      return items;
    }
    default: {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required) ? schema.required.filter((key) => typeof key === "string") : [];
      const object: Record<string, unknown> = {};
      // Past the depth limit only required properties are filled, so recursive schemas terminate.
      const keys = depth >= maxSchemaDepth ? required : [...new Set([...Object.keys(properties), ...required])];
      for (const key of keys) object[key] = sampleFromSchema(properties[key] ?? {}, random, root, depth + 1);
      return object;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chat completions

interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** What the model "decided" for one choice; cached, then dressed as a completion or as chunks. */
interface GeneratedChoice {
  content: string | null;
  toolCalls: ToolCall[] | undefined;
  finishReason: "stop" | "length" | "tool_calls";
  completionTokens: number;
}

interface Generation {
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

function generate(body: ChatCompletionRequest): Generation {
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

// Ids are unique per answer, like OpenAI's; only the content is deterministic.
const idPrefix = Math.floor(Math.random() * 36 ** 6)
  .toString(36)
  .padStart(6, "0");
let idCounter = 0;
const nextId = (prefix: string) => `${prefix}${idPrefix}${(++idCounter).toString(36).padStart(8, "0")}`;

const mockSystemFingerprint = "fp_mock0001";

function usageOf(generation: Generation): Usage {
  const completion = generation.choices.reduce((sum, choice) => sum + choice.completionTokens, 0);
  return {
    prompt_tokens: generation.promptTokens,
    completion_tokens: completion,
    total_tokens: generation.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A full `chat.completion` answer for a request already checked by `validateChatCompletionRequest`. */
export function createChatCompletion(body: ChatCompletionRequest): ChatCompletion {
  const generation = generate(body);
  return {
    id: nextId("chatcmpl-"),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: generation.choices.map((choice, index) => ({
      index,
      message: {
        role: "assistant",
        content: choice.content,
        refusal: null,
        annotations: [],
        ...(choice.toolCalls ? { tool_calls: choice.toolCalls } : {}),
      },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage: usageOf(generation),
    service_tier: "default",
    system_fingerprint: mockSystemFingerprint,
  };
}

/** Word-sized pieces (a space leads each word, as tokens do); long runs such as JSON are cut every 16 chars. */
function splitForStreaming(text: string): string[] {
  const pieces: string[] = [];
  for (const word of text.match(/\s*\S+|\s+/g) ?? []) {
    if (word.length <= 16) {
      pieces.push(word);
      continue;
    }
    const chars = Array.from(word); // code points, so a surrogate pair is never split
    for (let i = 0; i < chars.length; i += 16) pieces.push(chars.slice(i, i + 16).join(""));
  }
  return pieces;
}

export interface ChunkOptions {
  /** Adds the final usage chunk (`choices: []`), as `stream_options.include_usage` asks. */
  includeUsage: boolean;
}

/**
 * Prompt tokens as an upstream with a tokenizer of its own might count them (every model that is not OpenAI's):
 * one token per `bytesPerToken` UTF-8 bytes of the messages' text, tool calls, tools and output schema, plus
 * OpenAI's framing of 3 tokens a message and 3 for the reply. Used instead of OpenAI's tokenizer when the
 * `bytesPerToken` knob is set.
 */
export function promptTokensByBytes(body: ChatCompletionRequest, bytesPerToken: number): number {
  let bytes = 0;
  for (const message of body.messages) {
    bytes += Buffer.byteLength(messageText(message.content));
    if (typeof message.name === "string") bytes += Buffer.byteLength(message.name);
    if (message.tool_calls !== undefined) bytes += Buffer.byteLength(JSON.stringify(message.tool_calls));
  }
  if (body.tools !== undefined) bytes += Buffer.byteLength(JSON.stringify(body.tools));
  if (body.response_format !== undefined) bytes += Buffer.byteLength(JSON.stringify(body.response_format));
  return Math.ceil(bytes / bytesPerToken) + 3 * body.messages.length + 3;
}

/** The usage with its prompt tokens replaced by `promptTokens` (total adjusted). */
export function withPromptTokens(usage: Usage, promptTokens: number): Usage {
  return { ...usage, prompt_tokens: promptTokens, total_tokens: promptTokens + usage.completion_tokens };
}

/**
 * The stream of `chat.completion.chunk` objects for a request: per choice a role chunk, content (or tool call
 * argument) deltas and a chunk with the finish reason; then, if asked, the usage chunk.
 */
export function createChatCompletionChunks(body: ChatCompletionRequest, options: ChunkOptions): ChatCompletionChunk[] {
  const generation = generate(body);
  const id = nextId("chatcmpl-");
  const created = Math.floor(Date.now() / 1000);
  // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
  const chunk = (choices: ChatCompletionChunk["choices"]): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: body.model,
    system_fingerprint: mockSystemFingerprint,
    choices,
    ...(options.includeUsage ? { usage: null } : {}),
  });
  const chunks: ChatCompletionChunk[] = [];
  for (const [index, choice] of generation.choices.entries()) {
    const delta = (value: ChatCompletionChunk["choices"][number]["delta"]) =>
      chunk([{ index, delta: value, logprobs: null, finish_reason: null }]);
    if (choice.toolCalls) {
      chunks.push(delta({ role: "assistant", content: null, refusal: null }));
      for (const [callIndex, call] of choice.toolCalls.entries()) {
        chunks.push(
          delta({
            tool_calls: [
              {
                index: callIndex,
                id: call.id,
                type: "function",
                function: { name: call.function.name, arguments: "" },
              },
            ],
          }),
        );
        for (const piece of splitForStreaming(call.function.arguments)) {
          chunks.push(delta({ tool_calls: [{ index: callIndex, function: { arguments: piece } }] }));
        }
      }
    } else {
      chunks.push(delta({ role: "assistant", content: "", refusal: null }));
      for (const piece of splitForStreaming(choice.content ?? "")) chunks.push(delta({ content: piece }));
    }
    chunks.push(chunk([{ index, delta: {}, logprobs: null, finish_reason: choice.finishReason }]));
  }
  if (options.includeUsage) chunks.push({ ...chunk([]), usage: usageOf(generation) });
  return chunks;
}

// ---------------------------------------------------------------------------------------------------------------
// Embeddings

/** Native vector sizes of OpenAI's embedding models; anything else gets 1536 like text-embedding-3-small. */
function embeddingDimensions(model: string): number {
  return model.startsWith("text-embedding-3-large") ? 3072 : 1536;
}

/** A unit-length vector derived from the input alone: equal texts embed equally, different texts differ. */
function embedText(key: string, dimensions: number): Float64Array {
  const random = createRandom(hashString(key));
  const vector = new Float64Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = random() * 2 - 1;
    vector[i] = value;
    norm += value * value;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] as number) / norm;
  return vector;
}

/** Base64 of little-endian float32s: what OpenAI sends for `encoding_format: "base64"`. */
function toBase64(vector: Float64Array): string {
  const floats = new Float32Array(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

/** An embeddings answer for a request already checked by `validateEmbeddingRequest`. */
export function createEmbeddings(body: EmbeddingRequest): EmbeddingResponse {
  const input = body.input;
  // One string, one token array, or a list of either.
  const inputs: Array<string | number[]> =
    typeof input === "string"
      ? [input]
      : input.length > 0 && typeof input[0] === "number"
        ? [input as number[]]
        : (input as Array<string | number[]>);
  const dimensions = body.dimensions ?? embeddingDimensions(body.model);
  let promptTokens = 0;
  const data = inputs.map((item, index) => {
    const text = typeof item === "string" ? item : JSON.stringify(item);
    promptTokens += typeof item === "string" ? countTextTokens(item) : item.length;
    const vector = embedText(text, dimensions);
    return {
      object: "embedding" as const,
      index,
      embedding: body.encoding_format === "base64" ? toBase64(vector) : Array.from(vector),
    };
  });
  return {
    object: "list",
    data,
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Models

const models: ModelList = {
  object: "list",
  data: [
    { id: "gpt-4o-mini", object: "model", created: 1721172741, owned_by: "system" },
    { id: "gpt-4o", object: "model", created: 1715367049, owned_by: "system" },
    { id: "gpt-4.1-mini", object: "model", created: 1744318173, owned_by: "system" },
    { id: "gpt-4.1", object: "model", created: 1744316542, owned_by: "system" },
    { id: "text-embedding-3-small", object: "model", created: 1705948997, owned_by: "system" },
    { id: "text-embedding-3-large", object: "model", created: 1705953180, owned_by: "system" },
    { id: "mock", object: "model", created: 1704067200, owned_by: "ai-request-handler" },
  ],
};

export function listMockModels(): ModelList {
  return { object: "list", data: models.data.map((model) => ({ ...model })) };
}
