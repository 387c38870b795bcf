import { calcPrice } from "@pydantic/genai-prices";
import { roundUsd } from "./usd.ts";

/**
 * Cost in USD from the maintained price list of @pydantic/genai-prices; null when the model's price is unknown
 * (a self-hosted model, or the `mock` model).
 *
 * Matching a model name against the list is most of the work of a lookup (tens of microseconds), so each model's
 * per-token rates are found once. That holds only for flat prices: a model whose price changes with the size of the
 * request (tiered, long-context) is looked up every time.
 */
type Rates = { kind: "flat"; input: number; output: number } | { kind: "unknown" } | { kind: "tiered" };

const rates = new Map<string, Rates>();
const probeTokens = 1_000_000;

/** Prompt tokens read from or written to a provider's prompt cache (Anthropic's), priced at their own rates. */
export interface CacheTokens {
  read?: number;
  write?: number;
}

function price(model: string, inputTokens: number, outputTokens: number, cache?: CacheTokens): number | undefined {
  const usage = {
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    ...(cache?.read && { cache_read_tokens: cache.read }),
    ...(cache?.write && { cache_write_tokens: cache.write }),
  };
  // OpenAI's list first (its names are matched most precisely there); then any provider's (claude-…, gemini-…).
  const result = calcPrice(usage, model, { providerId: "openai" }) ?? calcPrice(usage, model);
  return result ? result.total_price : undefined;
}

/** The cache tokens an upstream's usage reports (Anthropic's fields, kept by its translator). */
export function cacheTokensOf(usage: object): CacheTokens | undefined {
  const { cache_read_input_tokens: read, cache_creation_input_tokens: write } = usage as Record<string, unknown>;
  if (typeof read !== "number" && typeof write !== "number") return undefined;
  return { read: typeof read === "number" ? read : 0, write: typeof write === "number" ? write : 0 };
}

function ratesOf(model: string): Rates {
  let known = rates.get(model);
  if (known) return known;
  const input = price(model, probeTokens, 0);
  const output = price(model, 0, probeTokens);
  if (input === undefined || output === undefined) known = { kind: "unknown" };
  else {
    // Flat when ten times the tokens cost ten times as much, on both sides.
    const flat =
      Math.abs((price(model, probeTokens * 10, 0) ?? 0) - input * 10) < 1e-9 &&
      Math.abs((price(model, 0, probeTokens * 10) ?? 0) - output * 10) < 1e-9;
    known = flat ? { kind: "flat", input: input / probeTokens, output: output / probeTokens } : { kind: "tiered" };
  }
  rates.set(model, known);
  return known;
}

export function costUsd(
  model: string,
  promptTokens: number,
  completionTokens: number,
  cache?: CacheTokens,
): number | null {
  // Prompt tokens counted from a cache cost less (reads) or more (writes): the list prices them, per call.
  if (cache && ((cache.read ?? 0) > 0 || (cache.write ?? 0) > 0)) {
    const total = price(model, promptTokens, completionTokens, cache);
    return total === undefined ? null : roundUsd(total);
  }
  const known = ratesOf(model);
  let total: number | undefined;
  if (known.kind === "flat") total = promptTokens * known.input + completionTokens * known.output;
  else if (known.kind === "tiered") total = price(model, promptTokens, completionTokens);
  if (total === undefined) return null;
  return roundUsd(total);
}
