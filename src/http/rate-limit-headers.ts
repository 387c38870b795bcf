import type { LimitState } from "../limits/limiter.ts";

/**
 * OpenAI's rate-limit headers, for success and 429 answers alike:
 * x-ratelimit-{limit,remaining,reset}-{requests,tokens}. A window the caller has no limit on is left out.
 */
export function rateLimitHeaders(state: LimitState): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const kind of ["requests", "tokens"] as const) {
    const window = state[kind];
    if (!window) continue;
    headers[`x-ratelimit-limit-${kind}`] = String(window.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(window.remaining);
    headers[`x-ratelimit-reset-${kind}`] = formatResetDuration(window.resetMs);
  }
  return headers;
}

/**
 * A duration the way OpenAI writes its reset headers (Go's time.Duration): "250ms", "6s", "8.64s", "1m0s",
 * "1h2m3s". Whole milliseconds, rounded up so a client that waits this long is never early.
 */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  // Seconds with up to three decimals, trailing zeros dropped ("8.64", "6").
  const seconds = String(Number(((total % 60_000) / 1000).toFixed(3)));
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
