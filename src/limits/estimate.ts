import type { ChatMessage } from "../providers/provider.ts";
import { costUsd } from "../requests/cost.ts";
import { countPromptTokens, countTextTokens } from "../tokens.ts";

/**
 * The output reserved for a request that names no `max_tokens`. OpenAI caps such an answer only at the model's own
 * output limit (16,384 tokens for gpt-4o-mini, more for newer models); reserving that much would make a modest tpm
 * refuse every request that leaves max_tokens out. 4,096 covers nearly every real answer, and the settle step
 * replaces the estimate with the real usage anyway. The price of this choice: an answer longer than 4,096 tokens
 * can take a budget past its limit by the difference (see worstCaseCostUsd).
 */
export const defaultMaxOutputTokens = 4096;

/**
 * What a non-text content part (an image) may cost, since its size is unknown before the call: the largest
 * high-detail image of the gpt-4o family (768×2048 px = 8 tiles × 170 + 85). Counting the base64 text of the
 * image instead would overestimate it a hundredfold.
 */
export const nonTextPartTokens = 1445;

/** A chat or embeddings body: OpenAI's `messages` (and `tools`), or an embeddings `input`, or the native `input`. */
export interface EstimateBody {
  messages?: readonly unknown[] | undefined;
  input?: unknown;
  tools?: unknown;
}

/**
 * Tokens to reserve against tpm before the upstream call: the prompt counted with the tokenizer (as the upstream
 * will count it) plus the most the answer may use: `maxOutputTokens`, or `defaultMaxOutputTokens` when the
 * request names none. Embeddings pass 0: they have no output.
 */
export function estimateTokens(body: EstimateBody, maxOutputTokens: number | undefined): number {
  return promptTokens(body) + Math.max(0, maxOutputTokens ?? defaultMaxOutputTokens);
}

/** The prompt side of `estimateTokens`. */
export function promptTokens(body: EstimateBody): number {
  if (Array.isArray(body.messages)) return messagesTokens(body.messages, body.tools);
  const input = body.input;
  if (typeof input === "string") return countTextTokens(input);
  if (!Array.isArray(input)) return 0;
  // Native chat input: a list of {role, content} messages.
  if (input.some((item) => isRecord(item))) return messagesTokens(input, body.tools);
  let total = 0;
  for (const item of input) {
    if (typeof item === "string") total += countTextTokens(item);
    else if (typeof item === "number")
      total += 1; // an embeddings input given as token ids
    else if (Array.isArray(item)) total += item.length;
  }
  return total;
}

/**
 * The most a call may cost: the prompt plus `maxOutputTokens` of output at the model's price. A model without a
 * known price (the mock, a self-hosted model) counts as free: its requests are stored with `cost_usd: null`, so the
 * budget (which sums the stored cost) could never count them either.
 */
export function worstCaseCostUsd(model: string, promptTokenCount: number, maxOutputTokens: number): number {
  return costUsd(model, promptTokenCount, Math.max(0, maxOutputTokens)) ?? 0;
}

function messagesTokens(messages: readonly unknown[], tools: unknown): number {
  const chat: ChatMessage[] = [];
  let extra = 0;
  for (const message of messages) {
    if (!isRecord(message)) continue;
    const role = typeof message.role === "string" ? message.role : "user";
    if (Array.isArray(message.content)) {
      for (const part of message.content)
        if (!(isRecord(part) && typeof part.text === "string")) extra += nonTextPartTokens;
    }
    chat.push({ ...message, role: role as ChatMessage["role"], content: normaliseContent(message.content) });
  }
  return countPromptTokens(chat, tools) + extra;
}

function normaliseContent(content: unknown): ChatMessage["content"] {
  if (typeof content === "string" || content === null || Array.isArray(content)) return content;
  return content === undefined ? null : JSON.stringify(content);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
