import { calcPrice } from "@pydantic/genai-prices";

/**
 * Cost in USD from the maintained price list of @pydantic/genai-prices; null when the model's price is unknown
 * (a self-hosted model, or the `mock` model). Lookups are memoised per model because most of the work is
 * matching the model name, and the price of a token does not change while the process runs.
 */
const knownModels = new Map<string, boolean>();

export function costUsd(model: string, promptTokens: number, completionTokens: number): number | null {
  if (knownModels.get(model) === false) return null;
  const price = calcPrice({ input_tokens: promptTokens, output_tokens: completionTokens }, model, {
    providerId: "openai",
  });
  knownModels.set(model, price !== undefined && price !== null);
  if (!price) return null;
  // Micro-dollar rounding keeps float noise (0.00020999999999999998) out of stored values.
  return Math.round(price.total_price * 1e9) / 1e9;
}
