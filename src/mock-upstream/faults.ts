/**
 * The mock upstream's fault knobs: what a test can script or randomise, their defaults, how a partial update (from a
 * test or from `POST /__faults`) is checked and merged, and which fault the next `/v1` request gets.
 */
import { isRecord } from "../is-record.ts";

/** One scripted answer, consumed by the next `/v1` request before any random fault is drawn. */
export interface FailSpec {
  /**
   * Answer this status with the API's error body: OpenAI's (e.g. 500, 503, 429, 400, 404), or Anthropic's on its
   * routes (the error type follows the status: 529 overloaded_error, 429 rate_limit_error, …).
   */
  status?: number;
  /** With 429 (or any status): sends `Retry-After` (whole seconds, rounded up) and `retry-after-ms`. */
  retryAfterSeconds?: number;
  /** Sends only `retry-after-ms` (plus `Retry-After` rounded up): lets tests honour a Retry-After quickly. */
  retryAfterMs?: number;
  /** Overrides the error message; `param` and `code` fill the error body's fields (OpenAI's; Anthropic's has none). */
  message?: string;
  param?: string;
  code?: string;
  /** Accept the request and never answer it. */
  hang?: boolean;
  /** Destroy the connection without answering (a connection error for the client). */
  drop?: boolean;
  /**
   * Stream this many chunks (Anthropic: events, `ping` included), then destroy the connection without `[DONE]`
   * (without `message_stop`). Stream requests only.
   */
  brokenStreamAfterChunks?: number;
  /**
   * Anthropic streams only: after this many events, send an `error` event (`overloaded_error`, or `message`) and end
   * the response normally, as Anthropic does when it fails mid-stream.
   */
  streamErrorAfterEvents?: number;
}

export interface MockFaults {
  /** Delay before the answer's headers, on every `/v1` request. Default 0. */
  latencyMs: number;
  /** Delay between two stream chunks. Default 0 (the whole stream is written at once). */
  streamChunkDelayMs: number;
  /** Share of requests (0..1) answered 500. Default 0. */
  errorRate: number;
  /** Share of requests (0..1) answered 429 with Retry-After. Default 0. */
  rateLimitRate: number;
  /**
   * Share of requests (0..1) answered 529, Anthropic's overloaded_error (on OpenAI's routes, OpenAI's body for a
   * server error). Default 0.
   */
  overloadedRate: number;
  /** The Retry-After of random 429s (and of a scripted 429 that names none). Default 1. */
  retryAfterSeconds: number;
  /** Accept every request and never answer. Default false. */
  hang: boolean;
  /**
   * Every stream sends this many chunks (Anthropic: events), then the connection is destroyed without `[DONE]` (or
   * `message_stop`). Default null (off).
   */
  brokenStreamAfterChunks: number | null;
  /** Scripted answers, one consumed per `/v1` request, before the random faults. Default []. */
  failNext: FailSpec[];
  /**
   * Count chat prompt tokens as one per this many UTF-8 bytes (plus OpenAI's per-message framing), the way an
   * upstream with a tokenizer of its own disagrees with OpenAI's. Default null: OpenAI's tokenizer (o200k).
   */
  bytesPerToken: number | null;
}

export const defaultFaults: MockFaults = {
  latencyMs: 0,
  streamChunkDelayMs: 0,
  errorRate: 0,
  rateLimitRate: 0,
  overloadedRate: 0,
  retryAfterSeconds: 1,
  hang: false,
  brokenStreamAfterChunks: null,
  failNext: [],
  bytesPerToken: null,
};

const isNonNegative = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= 0;

/** Checks a partial set of knobs (from a test or from `POST /__faults`) and returns it merged into `current`. */
export function mergeFaults(current: MockFaults, partial: unknown): MockFaults {
  if (!isRecord(partial)) throw new TypeError("faults must be a JSON object");
  const next: MockFaults = { ...current, failNext: [...current.failNext] };
  for (const [key, value] of Object.entries(partial)) {
    switch (key) {
      case "latencyMs":
      case "streamChunkDelayMs":
      case "retryAfterSeconds":
        if (!isNonNegative(value)) throw new TypeError(`${key} must be a number >= 0`);
        next[key] = value;
        break;
      case "errorRate":
      case "rateLimitRate":
      case "overloadedRate":
        if (!isNonNegative(value) || value > 1) throw new TypeError(`${key} must be a number from 0 to 1`);
        next[key] = value;
        break;
      case "hang":
        if (typeof value !== "boolean") throw new TypeError("hang must be a boolean");
        next.hang = value;
        break;
      case "brokenStreamAfterChunks":
        if (value !== null && !(Number.isInteger(value) && isNonNegative(value))) {
          throw new TypeError("brokenStreamAfterChunks must be an integer >= 0 or null");
        }
        next.brokenStreamAfterChunks = value as number | null;
        break;
      case "bytesPerToken":
        if (value !== null && !(typeof value === "number" && Number.isFinite(value) && value > 0)) {
          throw new TypeError("bytesPerToken must be a number > 0 or null");
        }
        next.bytesPerToken = value as number | null;
        break;
      case "failNext":
        if (!Array.isArray(value) || !value.every(isRecord))
          throw new TypeError("failNext must be an array of objects");
        next.failNext = value.map((spec) => ({ ...spec }) as FailSpec);
        break;
      default:
        throw new TypeError(`unknown fault knob: ${key}`);
    }
  }
  return next;
}

/**
 * The fault for this request: the scripted queue first, then `hang`, then the random rates. Consumes the head of
 * `faults.failNext`.
 */
export function drawFault(faults: MockFaults): FailSpec | undefined {
  const scripted = faults.failNext.shift();
  if (scripted) return scripted;
  if (faults.hang) return { hang: true };
  if (faults.errorRate > 0 && Math.random() < faults.errorRate) return { status: 500 };
  if (faults.rateLimitRate > 0 && Math.random() < faults.rateLimitRate) return { status: 429 };
  if (faults.overloadedRate > 0 && Math.random() < faults.overloadedRate) return { status: 529 };
  return undefined;
}
