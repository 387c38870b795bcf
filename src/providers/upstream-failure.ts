/**
 * How an upstream call failed, in the terms the retry policy decides on: an HTTP status (with the upstream's message
 * and Retry-After), a timeout, or a connection that broke; and the error the pipeline answers with once retries are
 * spent.
 */
import type { Dispatcher } from "undici";
import { AppError } from "../errors.ts";

/** Why one attempt failed, in terms the retry policy decides on. */
export type Failure =
  | { kind: "status"; status: number; message: string; param: string | undefined; retryAfterMs: number | undefined }
  | { kind: "timeout" }
  | { kind: "connection"; message: string };

/** Carries a classified failure out of an attempt; never leaves the provider. */
export class AttemptFailed extends Error {
  constructor(readonly failure: Failure) {
    super("upstream attempt failed");
  }
}

const timeoutCodes = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

export function classify(error: unknown): Failure | undefined {
  if (error instanceof AttemptFailed) return error.failure;
  if (error instanceof AppError) return undefined;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  if (timeoutCodes.has(code)) return { kind: "timeout" };
  // undici's socket errors (UND_ERR_SOCKET, UND_ERR_CLOSED…) and the system's (ECONNREFUSED, ECONNRESET, EPIPE…).
  if (code.startsWith("UND_ERR_") || /^E[A-Z]+$/.test(code) || code === "ERR_STREAM_PREMATURE_CLOSE") {
    return { kind: "connection", message: `${code}: ${(error as Error).message}` };
  }
  return undefined;
}

export const isRetryable = (failure: Failure) =>
  failure.kind !== "status" || failure.status === 429 || failure.status >= 500;

export const abortError = (signal: AbortSignal): unknown =>
  signal.reason ?? new DOMException("This operation was aborted", "AbortError");

function header(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `retry-after-ms` (OpenAI's), else `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(
  headers: Dispatcher.ResponseData["headers"],
  now: number = Date.now(),
): number | undefined {
  const milliseconds = Number.parseFloat(header(headers, "retry-after-ms") ?? "");
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const retryAfter = header(headers, "retry-after")?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A failure past the retry policy as the error the pipeline answers with; `timeoutMs` names the deadline. */
export function toAppError(failure: Failure, attempts: number, timeoutMs: number): AppError {
  const tries = `${attempts} attempt${attempts === 1 ? "" : "s"}`;
  switch (failure.kind) {
    case "timeout":
      return new AppError("upstream_timeout", `the upstream sent nothing for ${timeoutMs} ms (${tries})`);
    case "connection":
      return new AppError("upstream_error", `could not reach the upstream after ${tries}: ${failure.message}`);
    case "status": {
      const { status, message, param } = failure;
      const withParam = param === undefined ? {} : { param };
      if (status === 400 || status === 422) return new AppError("invalid_request", message, withParam);
      if (status === 404) return new AppError("not_found", message, withParam);
      if (status === 413) return new AppError("payload_too_large", message, withParam);
      if (status === 401 || status === 403) {
        return new AppError("upstream_error", `the upstream refused the service's credentials (${status})`);
      }
      const retryAfterSeconds =
        failure.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(failure.retryAfterMs / 1000));
      const after = isRetryable(failure) ? ` after ${tries}` : "";
      return new AppError("upstream_error", `upstream answered ${status}${after}: ${message}`, {
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      });
    }
  }
}
