import { AppError } from "../errors.ts";
import type { LimitRefusal } from "../limits/limiter.ts";
import { rateLimitHeaders } from "./rate-limit-headers.ts";

/**
 * A wait longer than this is not worth retrying soon: the answer says `x-should-retry: false`, which OpenAI's SDKs
 * obey instead of retrying at once.
 */
export const retryNotWorthMs = 60_000;

/**
 * The one place a limit's refusal becomes HTTP: 429 with `Retry-After` (whole seconds), `retry-after-ms` (which
 * OpenAI's SDKs prefer), the x-ratelimit-* set, and `x-should-retry: false` when waiting cannot help soon (a request
 * larger than the limit, a budget spent until next month). The body (problem+json or OpenAI's error) is
 * error-handler.ts's.
 */
export function refusalError(refusal: LimitRefusal): AppError {
  const retryIn = `retry in ${retryAfterSeconds(refusal.retryAfterMs)} s`;
  switch (refusal.limit) {
    case "rpm":
      return new AppError(
        "rate_limited",
        `rate limit reached: ${refusal.allowed} requests per minute for this ${scopeName(refusal.scope)}; ${retryIn}`,
        answer(refusal, false),
      );
    case "tpm":
      if (refusal.tooLarge) {
        return new AppError(
          "rate_limited",
          `this request may use up to ${refusal.tokens} tokens (prompt and max output), more than the ` +
            `${refusal.allowed} tokens per minute of this ${scopeName(refusal.scope)}; send a shorter input or a ` +
            "lower max_tokens",
          answer(refusal, true),
        );
      }
      return new AppError(
        "rate_limited",
        `token rate limit reached: this request may use up to ${refusal.tokens} tokens and the ${refusal.allowed} ` +
          `tokens per minute of this ${scopeName(refusal.scope)} are taken; ${retryIn}`,
        answer(refusal, false),
      );
    case "budget":
      return new AppError(
        "budget_exceeded",
        `monthly budget of ${usd(refusal.budgetUsd)} reached (${usd(refusal.committedUsd)} spent or held by calls ` +
          `in flight; this call may cost up to ${usd(refusal.costUsd)}); it renews on ` +
          refusal.renewsAt.toISOString().slice(0, 10),
        answer(refusal, true),
      );
  }
}

function answer(refusal: LimitRefusal, hopeless: boolean) {
  const headers: Record<string, string> = {
    ...rateLimitHeaders(refusal.state),
    "retry-after-ms": String(Math.max(0, Math.ceil(refusal.retryAfterMs))),
  };
  if (hopeless || refusal.retryAfterMs > retryNotWorthMs) headers["x-should-retry"] = "false";
  return { retryAfterSeconds: retryAfterSeconds(refusal.retryAfterMs), headers };
}

const scopeName = (scope: "user" | "key") => (scope === "key" ? "API key" : "user");

const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function usd(amount: number): string {
  return `$${amount >= 1 ? amount.toFixed(2) : Number(amount.toPrecision(3))}`;
}
