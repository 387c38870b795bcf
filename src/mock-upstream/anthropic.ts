/**
 * Anthropic's API on the mock upstream, on the same port as OpenAI's: `POST /v1/messages` (whole or streamed),
 * `POST /v1/messages/count_tokens`, and `GET /v1/models[/{id}]` for a request that carries `anthropic-version`.
 * Anthropic's auth (`x-api-key`, or the bearer key SDK 1.x sends), its API versions, its error bodies, and the same
 * fault knobs as the OpenAI routes.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { MessageCreateParamsBase, MessageCountTokensParams } from "@anthropic-ai/sdk/resources/messages";
import type { ModelInfo } from "@anthropic-ai/sdk/resources/models";
import { createMessage, createMessageEvents } from "../providers/mock-model/messages.ts";
import { countPrompt, type PromptCache } from "../providers/mock-model/messages-prompt.ts";
import { writeAnthropicStream } from "./anthropic-stream.ts";
import { validateMessagesRequest } from "./anthropic-validate.ts";
import { anthropicErrorBody, anthropicFaultBody, retryAfterHeaders } from "./error-bodies.ts";
import type { FailSpec, MockFaults } from "./faults.ts";
import { sendJson, sleep } from "./http-io.ts";
import type { Route } from "./routes.ts";

/** The `anthropic-version`s the API takes; 2026-10-21 is what SDK 1.x sends. */
const versions = ["2023-01-01", "2023-06-01", "2026-10-21"];

/** Anthropic's routes, and any route but OpenAI's own asked with `anthropic-version` (models, an unknown path). */
export function isAnthropicRequest(path: string, route: Route | undefined, headers: IncomingHttpHeaders): boolean {
  if (path === "/v1/messages" || path.startsWith("/v1/messages/")) return true;
  return headers["anthropic-version"] !== undefined && route !== "chat" && route !== "embeddings";
}

const model = (
  id: string,
  display_name: string,
  line: ModelInfo["line"],
  created_at: string,
  max_input_tokens: number,
  max_tokens: number,
): ModelInfo => ({
  type: "model",
  id,
  display_name,
  created_at,
  capabilities: null,
  deprecated_at: null,
  lifecycle: "active",
  line,
  max_input_tokens,
  max_tokens,
  retires_at: null,
});

/** Newest first, as Anthropic lists them. */
const models: ModelInfo[] = [
  model("claude-opus-4-8", "Claude Opus 4.8", "opus", "2026-05-28T00:00:00Z", 1_000_000, 128_000),
  model("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet", "2026-02-17T00:00:00Z", 1_000_000, 64_000),
  model("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "haiku", "2025-10-15T00:00:00Z", 200_000, 64_000),
  model("mock", "Mock model", null, "2024-01-01T00:00:00Z", 200_000, 64_000),
];
const modelPage = JSON.stringify({
  data: models,
  has_more: false,
  first_id: models[0]?.id ?? null,
  last_id: models.at(-1)?.id ?? null,
});

/** What the server lends an Anthropic request: its route, its body, the knobs, the stats' counters. */
export interface AnthropicContext {
  match: { route: Route; id?: string } | "method" | undefined;
  /** The raw body; undefined when it is over the size limit. */
  text: string | undefined;
  /** Sequential, for the `request-id`. */
  requestNumber: number;
  /** When set, the only key accepted; otherwise any non-empty one. */
  apiKey: string | undefined;
  /** The knobs as they are now. */
  faults: () => MockFaults;
  /** This request's fault (consumed from the knobs), counted in the stats. */
  drawFault: () => FailSpec | undefined;
  onMessagesRequest: ((body: unknown) => void) | undefined;
  countStream: () => void;
  promptCache: PromptCache;
  /** Aborted when the client closes before the answer is complete. */
  signal: AbortSignal;
  /** Cuts the connection (a dropped request, a broken stream). */
  destroy: () => void;
}

/** Why the request's key is refused, if it is: `x-api-key`, or `Authorization: Bearer` as SDK 1.x sends it. */
function authError(headers: IncomingHttpHeaders, apiKey: string | undefined): string | undefined {
  const header = headers["x-api-key"];
  const authorization = headers.authorization;
  const key =
    typeof header === "string" && header.trim() !== ""
      ? header.trim()
      : authorization?.startsWith("Bearer ")
        ? authorization.slice("Bearer ".length).trim()
        : "";
  if (key === "") return "x-api-key header is required";
  return apiKey === undefined || key === apiKey ? undefined : "invalid x-api-key";
}

export async function handleAnthropic(
  req: IncomingMessage,
  res: ServerResponse,
  context: AnthropicContext,
): Promise<void> {
  const requestId = `req_011CMock${context.requestNumber.toString(36).padStart(12, "0")}`;
  const headers = { "request-id": requestId };
  const fail = (status: number, type: string, message: string) =>
    sendJson(res, status, anthropicErrorBody(type, message, requestId), headers);

  const refused = authError(req.headers, context.apiKey);
  if (refused) return fail(401, "authentication_error", refused);
  const version = req.headers["anthropic-version"];
  if (version === undefined) return fail(400, "invalid_request_error", "anthropic-version: header is required");
  if (typeof version !== "string" || !versions.includes(version)) {
    return fail(
      400,
      "invalid_request_error",
      `anthropic-version: ${JSON.stringify(String(version))} is not a valid version`,
    );
  }
  const { match, text } = context;
  if (match === undefined) return fail(404, "not_found_error", "Not Found");
  if (match === "method") return fail(405, "invalid_request_error", "Method Not Allowed");
  if (text === undefined) return fail(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.");

  if (!(await sleep(context.faults().latencyMs, context.signal))) return;
  const fault = context.drawFault();
  if (fault?.drop) return context.destroy();
  if (fault?.hang) return; // never answered; the close handler counts the client giving up
  if (fault?.status !== undefined) {
    const retryHeaders = retryAfterHeaders(fault, context.faults().retryAfterSeconds);
    return sendJson(res, fault.status, anthropicFaultBody(fault.status, fault, requestId), {
      ...headers,
      ...retryHeaders,
    });
  }

  switch (match.route) {
    case "models":
      return sendJson(res, 200, modelPage, headers);
    case "model": {
      const found = models.find((item) => item.id === match.id);
      return found ? sendJson(res, 200, found, headers) : fail(404, "not_found_error", `model: ${match.id}`);
    }
    case "messages":
    case "count_tokens":
      break;
    default:
      return fail(404, "not_found_error", "Not Found");
  }

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return fail(400, "invalid_request_error", `There was an issue with your request body: ${(error as Error).message}`);
  }
  const countTokens = match.route === "count_tokens";
  if (!countTokens) context.onMessagesRequest?.(body);
  const invalid = validateMessagesRequest(body, { version, countTokens });
  if (invalid) return fail(400, "invalid_request_error", invalid);
  // Read after onMessagesRequest, which may change them.
  const faults = context.faults();
  if (countTokens) {
    const count = countPrompt(body as MessageCountTokensParams, faults.bytesPerToken);
    return sendJson(res, 200, { input_tokens: count.total }, headers);
  }

  const request = body as MessageCreateParamsBase;
  const prompt = context.promptCache.use(countPrompt(request, faults.bytesPerToken));
  if (request.stream !== true) return sendJson(res, 200, createMessage(request, prompt), headers);
  context.countStream();
  const errorAfter = fault?.streamErrorAfterEvents;
  return writeAnthropicStream(res, createMessageEvents(request, prompt), {
    headers,
    eventDelayMs: faults.streamChunkDelayMs,
    brokenAfter: fault?.brokenStreamAfterChunks ?? faults.brokenStreamAfterChunks,
    errorAfter: errorAfter === undefined ? undefined : { events: errorAfter, message: fault?.message ?? "Overloaded" },
    signal: context.signal,
    destroy: context.destroy,
  });
}
