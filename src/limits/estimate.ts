import { isRecord } from "../is-record.ts";
import { costUsd } from "../cost.ts";

/**
 * What a request may use at most, reserved against tpm and the budget before its upstream call, without a
 * tokenizer: the upstream counts tokens its own way (every model that is not OpenAI's has a tokenizer of its own),
 * so the prompt is measured in UTF-8 bytes and turned into tokens with the model's tokens-per-byte as learned from
 * the usage its upstream reports (token-ratios.ts), or one token a byte for a model not seen yet. Byte-level
 * tokenizers never make more than one token of a byte; the chat template's own tokens are the allowance below.
 */

/**
 * The output reserved for, and asked of the upstream by, a request from a caller with a token limit or a budget
 * that names no `max_tokens`. OpenAI caps such an answer only at the model's own output limit (16,384 tokens for
 * gpt-4o-mini, more for newer models); reserving that much would make a modest tpm refuse every request that
 * leaves max_tokens out. 4,096 covers nearly every real answer, and the settle step gives back what is unused.
 */
export const defaultMaxOutputTokens = 4096;

/**
 * What a non-text content part (an image) may cost, since its size is unknown before the call: the largest
 * high-detail image of the gpt-4o family (768×2048 px = 8 tiles × 170 + 85). Counting the base64 text of the
 * image instead would overestimate it a hundredfold.
 */
export const nonTextPartTokens = 1445;

/** Tokens a chat template adds per message (role markers, separators) and per request (the reply's priming). */
export const messageAllowanceTokens = 8;
export const requestAllowanceTokens = 32;

/** A chat or embeddings body: OpenAI's `messages` (and `tools`, `response_format`), or an `input`. */
export interface EstimateBody {
  messages?: readonly unknown[] | undefined;
  input?: unknown;
  tools?: unknown;
  response_format?: unknown;
}

/** The prompt's size as the reservation sees it. */
export interface PromptSize {
  /** UTF-8 bytes of everything the upstream turns into tokens: text, names, tool calls, tools, the output schema. */
  bytes: number;
  messages: number;
  /** Tokens known without a ratio: images, token-id inputs of embeddings, the template allowances. */
  fixedTokens: number;
  /** False when part of the prompt is estimated rather than measured (an image): such a call teaches no ratio. */
  measured: boolean;
}

export function promptSize(body: EstimateBody): PromptSize {
  const size: PromptSize = { bytes: 0, messages: 0, fixedTokens: 0, measured: true };
  if (Array.isArray(body.messages)) addMessages(size, body.messages);
  else addInput(size, body.input);
  if (body.tools !== undefined && body.tools !== null) size.bytes += jsonBytes(body.tools);
  if (body.response_format !== undefined && body.response_format !== null) {
    size.bytes += jsonBytes(body.response_format);
  }
  return size;
}

/** The most the prompt can be, in tokens, at `tokensPerByte`. */
export function promptTokenBound(size: PromptSize, tokensPerByte: number): number {
  return Math.ceil(size.bytes * tokensPerByte) + size.fixedTokens;
}

/**
 * What a call's reported prompt tokens say of the model's tokens per byte, or undefined when the call cannot tell
 * (too small for the template's tokens not to dominate, or with parts that were estimated).
 */
export function observedTokensPerByte(size: PromptSize, promptTokens: number): number | undefined {
  if (!size.measured || size.bytes < minBytesToLearn || !Number.isFinite(promptTokens)) return undefined;
  return Math.max(0, promptTokens - size.fixedTokens) / size.bytes;
}
const minBytesToLearn = 512;

/**
 * The most a call may cost: the prompt plus `maxOutputTokens` of output at the model's price. A model without a
 * known price (the mock, a self-hosted model) counts as free: its requests are stored with `cost_usd: null`, so the
 * budget (which sums the stored cost) could never count them either.
 */
export function worstCaseCostUsd(model: string, promptTokenCount: number, maxOutputTokens: number): number {
  return costUsd(model, promptTokenCount, Math.max(0, maxOutputTokens)) ?? 0;
}

function addMessages(size: PromptSize, messages: readonly unknown[]): void {
  size.fixedTokens += requestAllowanceTokens;
  for (const message of messages) {
    if (!isRecord(message)) continue;
    size.messages++;
    size.fixedTokens += messageAllowanceTokens;
    const content = message.content;
    if (typeof content === "string") size.bytes += Buffer.byteLength(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (isRecord(part) && typeof part.text === "string") size.bytes += Buffer.byteLength(part.text);
        else {
          size.fixedTokens += nonTextPartTokens;
          size.measured = false;
        }
      }
    } else if (content !== undefined && content !== null) size.bytes += jsonBytes(content);
    if (typeof message.name === "string") size.bytes += Buffer.byteLength(message.name);
    // Tool calls an assistant made earlier are part of the prompt too.
    if (message.tool_calls !== undefined) size.bytes += jsonBytes(message.tool_calls);
  }
}

function addInput(size: PromptSize, input: unknown): void {
  if (typeof input === "string") {
    size.bytes += Buffer.byteLength(input);
    return;
  }
  if (!Array.isArray(input)) return;
  // Native chat input: a list of {role, content} messages.
  if (input.some(isRecord)) {
    addMessages(size, input);
    return;
  }
  for (const item of input) {
    if (typeof item === "string") size.bytes += Buffer.byteLength(item);
    // Embeddings given as token ids: exactly that many tokens.
    else if (typeof item === "number") size.fixedTokens += 1;
    else if (Array.isArray(item)) size.fixedTokens += item.length;
  }
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? "");
