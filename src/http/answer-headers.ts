import type { LimitState } from "../limits/limiter.ts";
import { rateLimitHeaders } from "./rate-limit-headers.ts";
import type { CacheResult } from "../requests/request-service.ts";

/** What every answer of the pipeline says about itself: the rate-limit windows and where it came from. */
export function answerHeaders(answer: { rateLimit: LimitState; cache: CacheResult; record?: { id: string } }) {
  const headers: Record<string, string> = { ...rateLimitHeaders(answer.rateLimit), "x-cache": answer.cache };
  if (answer.record) headers["x-record-id"] = answer.record.id;
  return headers;
}

/** The headers of a server-sent-events answer, besides `answerHeaders`. */
export const sseHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  // Proxies such as nginx would otherwise buffer the stream.
  "x-accel-buffering": "no",
};
