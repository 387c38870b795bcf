/**
 * The closed table of error codes. Every error the service answers with is one of these; the HTTP status
 * follows from the code alone, so a route never picks a status by hand.
 */
const errorTable = {
  invalid_json: { status: 400, title: "Malformed JSON" },
  invalid_request: { status: 400, title: "Invalid request" },
  request_timeout: { status: 408, title: "Request timeout" },
  validation_failed: { status: 422, title: "Validation failed" },
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  not_found: { status: 404, title: "Not found" },
  conflict: { status: 409, title: "Conflict" },
  payload_too_large: { status: 413, title: "Payload too large" },
  uri_too_long: { status: 414, title: "URI too long" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  expectation_failed: { status: 417, title: "Expectation failed" },
  rate_limited: { status: 429, title: "Rate limit exceeded" },
  headers_too_large: { status: 431, title: "Request header fields too large" },
  // nginx's convention: nobody reads this answer, but the log and the metrics say what happened.
  client_closed: { status: 499, title: "Client closed the request" },
  budget_exceeded: { status: 429, title: "Budget exceeded" },
  internal: { status: 500, title: "Internal error" },
  upstream_error: { status: 502, title: "Upstream error" },
  upstream_invalid_output: { status: 502, title: "Upstream returned invalid output" },
  service_unavailable: { status: 503, title: "Service unavailable" },
  upstream_timeout: { status: 504, title: "Upstream timeout" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorTable;

export interface FieldError {
  /** Where in the input, as a JSON-pointer-like dotted path (`options.labels`). */
  path: string;
  message: string;
}

export interface AppErrorOptions {
  errors?: FieldError[];
  /** Seconds, sent as Retry-After. */
  retryAfterSeconds?: number;
  /** The OpenAI `param` of the error, when one field is to blame. */
  param?: string;
  headers?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: FieldError[] | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly param: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = errorTable[code].status;
    this.errors = options.errors;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.param = options.param ?? options.errors?.[0]?.path;
    this.headers = options.headers;
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;

/** RFC 9457 problem document, for the native API. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  request_id?: string;
}

const problemTypeBase = "https://ai-request-handler.dev/problems/";

export function toProblem(error: AppError, requestId?: string): Problem {
  const problem: Problem = {
    type: problemTypeBase + error.code.replaceAll("_", "-"),
    title: errorTable[error.code].title,
    status: error.status,
    detail: error.message,
  };
  if (error.errors?.length) problem.errors = error.errors;
  if (requestId) problem.request_id = requestId;
  return problem;
}

/** OpenAI's error shape, so the official SDKs raise their own typed errors. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function toOpenAIError(error: AppError): OpenAIErrorBody {
  return {
    error: {
      message: error.message,
      type: openAIErrorType(error.code),
      param: error.param ?? null,
      code: error.code,
    },
  };
}

function openAIErrorType(code: ErrorCode): string {
  switch (code) {
    case "invalid_json":
    case "invalid_request":
    case "validation_failed":
    case "not_found":
    case "conflict":
    case "client_closed":
    case "payload_too_large":
    case "unsupported_media_type":
    case "request_timeout":
    case "uri_too_long":
    case "expectation_failed":
    case "headers_too_large":
      return "invalid_request_error";
    case "unauthorized":
      return "authentication_error";
    case "forbidden":
      return "permission_error";
    case "rate_limited":
      return "rate_limit_error";
    case "budget_exceeded":
      return "insufficient_quota";
    case "internal":
    case "service_unavailable":
      return "server_error";
    case "upstream_error":
    case "upstream_invalid_output":
    case "upstream_timeout":
      return "upstream_error";
  }
}

/** Anthropic's error shape, with the status its SDKs expect for each kind (`/v1/messages`). */
export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
  request_id: string | null;
}

/**
 * Anthropic's status and error type for an error: its SDKs raise their typed errors by status, and retry 408, 409,
 * 429 and 5xx (529 is its "overloaded"). Statuses Anthropic does not use are mapped to the one it uses for the case.
 */
export function toAnthropicError(error: AppError, requestId?: string): { status: number; body: AnthropicErrorBody } {
  const [status, type] = anthropicStatusAndType(error);
  return { status, body: { type: "error", error: { type, message: error.message }, request_id: requestId ?? null } };
}

function anthropicStatusAndType(error: AppError): [number, string] {
  switch (error.code) {
    case "unauthorized":
      return [401, "authentication_error"];
    case "forbidden":
      return [403, "permission_error"];
    case "not_found":
      return [404, "not_found_error"];
    case "payload_too_large":
      return [413, "request_too_large"];
    case "rate_limited":
    case "budget_exceeded":
      return [429, "rate_limit_error"];
    case "request_timeout":
    case "conflict":
    case "client_closed":
      return [error.status, "invalid_request_error"];
    case "internal":
    case "upstream_error":
    case "upstream_invalid_output":
      return [500, "api_error"];
    case "service_unavailable":
    case "upstream_timeout":
      return [529, "overloaded_error"];
    default:
      return [400, "invalid_request_error"];
  }
}
