/**
 * OpenAI-shaped error bodies: the ones the mock answers on its own (auth, unknown route, bad JSON, …) and the ones of
 * injected faults, with their `Retry-After` headers.
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
