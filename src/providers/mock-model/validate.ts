/** What OpenAI answers 400 to, in the parts of a request the mock model reads. */
import { isRecord } from "../../is-record.ts";

/** A request the mock refuses, in the terms of OpenAI's 400 answer. */
export interface InvalidRequest {
  message: string;
  param: string | null;
}

const roles = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 1;

export function validateChatCompletionRequest(body: unknown): InvalidRequest | undefined {
  if (!isRecord(body)) return { message: "The request body must be a JSON object.", param: null };
  if (typeof body.model !== "string" || body.model === "") {
    return { message: "you must provide a model parameter", param: "model" };
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return { message: "'messages' must be a non-empty array of messages.", param: "messages" };
  }
  for (const [index, message] of body.messages.entries()) {
    if (!isRecord(message) || typeof message.role !== "string" || !roles.has(message.role)) {
      return { message: `Invalid value for 'messages[${index}].role'.`, param: `messages[${index}].role` };
    }
  }
  for (const field of ["max_tokens", "max_completion_tokens"] as const) {
    if (body[field] !== undefined && body[field] !== null && !isPositiveInteger(body[field])) {
      return { message: `Invalid '${field}': expected an integer of at least 1.`, param: field };
    }
  }
  if (body.n !== undefined && body.n !== null && (!isPositiveInteger(body.n) || body.n > 128)) {
    return { message: "Invalid 'n': expected an integer from 1 to 128.", param: "n" };
  }
  return undefined;
}

export function validateEmbeddingRequest(body: unknown): InvalidRequest | undefined {
  if (!isRecord(body)) return { message: "The request body must be a JSON object.", param: null };
  if (typeof body.model !== "string" || body.model === "") {
    return { message: "you must provide a model parameter", param: "model" };
  }
  const input = body.input;
  const isTokens = (value: unknown) =>
    Array.isArray(value) && value.length > 0 && value.every((token) => Number.isInteger(token) && token >= 0);
  const valid =
    (typeof input === "string" && input !== "") ||
    (Array.isArray(input) &&
      input.length > 0 &&
      (input.every((item) => typeof item === "string" && item !== "") || isTokens(input) || input.every(isTokens)));
  if (!valid) {
    return {
      message: "'input' must be a non-empty string, an array of non-empty strings, or token arrays.",
      param: "input",
    };
  }
  if (body.dimensions !== undefined && (!isPositiveInteger(body.dimensions) || body.dimensions > 3072)) {
    return { message: "Invalid 'dimensions': expected an integer from 1 to 3072.", param: "dimensions" };
  }
  if (body.encoding_format !== undefined && body.encoding_format !== "float" && body.encoding_format !== "base64") {
    return { message: "Invalid 'encoding_format': expected 'float' or 'base64'.", param: "encoding_format" };
  }
  return undefined;
}
