/**
 * Error bodies in OpenAI's and Anthropic's shapes: the ones the mock answers on its own (auth, unknown route, bad
 * JSON, …) and the ones of injected faults, with their `Retry-After` headers.
 */
import type { FailSpec } from "./faults.ts";

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export const errorBody = (message: string, type: string, param: string | null = null, code: string | null = null) =>
  ({ error: { message, type, param, code } }) satisfies ErrorBody;

/** OpenAI's answer to a missing or wrong API key. */
export const invalidApiKeyBody = errorBody(
  "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
  "invalid_request_error",
  null,
  "invalid_api_key",
);

/** OpenAI's answer to a body that is not JSON. */
export const invalidJsonBody = errorBody(
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
  "invalid_request_error",
);

/** OpenAI's own wording per status, so clients see what they would see from the real API. */
export function faultBody(status: number, spec: FailSpec): ErrorBody {
  const param = spec.param ?? null;
  const code = spec.code ?? null;
  if (status === 429) {
    return errorBody(
      spec.message ?? "Rate limit reached for requests (mock upstream). Please try again later.",
      "requests",
      param,
      spec.code ?? "rate_limit_exceeded",
    );
  }
  if (status === 401)
    return errorBody(
      spec.message ?? "Incorrect API key provided.",
      "invalid_request_error",
      param,
      spec.code ?? "invalid_api_key",
    );
  if (status === 503) {
    return errorBody(
      spec.message ?? "The engine is currently overloaded, please try again later.",
      "server_error",
      param,
      code,
    );
  }
  if (status >= 500) {
    return errorBody(
      spec.message ?? "The server had an error while processing your request. Sorry about that!",
      "server_error",
      param,
      code,
    );
  }
  return errorBody(
    spec.message ?? `Invalid request (mock upstream fault ${status}).`,
    "invalid_request_error",
    param,
    code,
  );
}

/**
 * `Retry-After` in whole seconds (what most servers send); `retry-after-ms` only when a test asked for a
 * millisecond value, so both header forms get exercised.
 */
export function retryAfterHeaders(fault: FailSpec, defaultSeconds: number): Record<string, string> {
  if (fault.retryAfterMs !== undefined) {
    return {
      "retry-after-ms": String(fault.retryAfterMs),
      "retry-after": String(Math.ceil(fault.retryAfterMs / 1000)),
    };
  }
  const seconds = fault.retryAfterSeconds ?? (fault.status === 429 ? defaultSeconds : undefined);
  return seconds === undefined ? {} : { "retry-after": String(Math.ceil(seconds)) };
}

// ---------------------------------------------------------------------------------------------------------------
// Anthropic

/** Anthropic's error body; the API repeats the `request-id` header in it. */
export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
  request_id: string;
}

export const anthropicErrorBody = (type: string, message: string, requestId: string): AnthropicErrorBody => ({
  type: "error",
  error: { type, message },
  request_id: requestId,
});

/** Anthropic's error type for each status it answers (https://docs.claude.com/en/api/errors). */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 504:
      return "timeout_error";
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

const anthropicMessages: Record<string, string> = {
  authentication_error: "invalid x-api-key",
  billing_error: "Your credit balance is too low to access the Anthropic API (mock upstream fault).",
  permission_error: "Your API key does not have permission to use the specified resource.",
  not_found_error: "Not found",
  conflict_error: "Conflict (mock upstream fault).",
  request_too_large: "Request exceeds the maximum allowed number of bytes.",
  rate_limit_error: "This request would exceed your organization's rate limit (mock upstream). Please try again later.",
  timeout_error: "Request timed out",
  overloaded_error: "Overloaded",
  api_error: "Internal server error",
};

/** An injected fault in Anthropic's shape: the status's error type, in Anthropic's words unless `message` is set. */
export function anthropicFaultBody(status: number, spec: FailSpec, requestId: string): AnthropicErrorBody {
  const type = anthropicErrorType(status);
  const message = spec.message ?? anthropicMessages[type] ?? `Invalid request (mock upstream fault ${status}).`;
  return anthropicErrorBody(type, message, requestId);
}
