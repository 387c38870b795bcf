/**
 * The `/v1` routes: which one a method and path name, and the answers of those that need more than one line (one
 * model, embeddings, chat completions whole or streamed), once the request has passed auth, the fault draw and JSON
 * parsing. Anthropic's routes (`messages`, `count_tokens`) are answered by anthropic.ts.
 */
import { isRecord } from "../is-record.ts";
import type { ServerResponse } from "node:http";
import type { ChatCompletionRequest, EmbeddingRequest } from "../providers/provider.ts";
import {
  createChatCompletion,
  createChatCompletionChunks,
  promptTokensByBytes,
  withPromptTokens,
} from "../providers/mock-model/chat.ts";
import { createEmbeddings, listMockModels } from "../providers/mock-model/embeddings.ts";
import { validateChatCompletionRequest, validateEmbeddingRequest } from "../providers/mock-model/validate.ts";
import { errorBody } from "./error-bodies.ts";
import type { FailSpec, MockFaults } from "./faults.ts";
import { sendJson, writeStream } from "./http-io.ts";

export type Route = "chat" | "embeddings" | "models" | "model" | "messages" | "count_tokens";

export function matchRoute(method: string, path: string): { route: Route; id?: string } | "method" | undefined {
  if (path === "/v1/chat/completions") return method === "POST" ? { route: "chat" } : "method";
  if (path === "/v1/messages") return method === "POST" ? { route: "messages" } : "method";
  if (path === "/v1/messages/count_tokens") return method === "POST" ? { route: "count_tokens" } : "method";
  if (path === "/v1/embeddings") return method === "POST" ? { route: "embeddings" } : "method";
  if (path === "/v1/models") return method === "GET" ? { route: "models" } : "method";
  if (path.startsWith("/v1/models/")) {
    return method === "GET" ? { route: "model", id: decodeURIComponent(path.slice("/v1/models/".length)) } : "method";
  }
  return undefined;
}

/** `GET /v1/models/{id}`. */
export function answerModel(res: ServerResponse, id: string | undefined, headers: Record<string, string>) {
  const model = listMockModels().data.find((item) => item.id === id);
  if (!model) {
    return sendJson(
      res,
      404,
      errorBody(`The model '${id}' does not exist`, "invalid_request_error", "model", "model_not_found"),
      headers,
    );
  }
  return sendJson(res, 200, model, headers);
}

/** Embedding answers carry no id or timestamp, so identical bodies get the identical serialized answer. */
const embeddingCache = new Map<string, string>();
const embeddingCacheSize = 256;

/** `POST /v1/embeddings`: `text` is the raw body (the cache key), `body` the same parsed. */
export function answerEmbeddings(res: ServerResponse, text: string, body: unknown, headers: Record<string, string>) {
  let answer = embeddingCache.get(text);
  if (answer === undefined) {
    const invalid = validateEmbeddingRequest(body);
    if (invalid) return sendJson(res, 400, errorBody(invalid.message, "invalid_request_error", invalid.param), headers);
    answer = JSON.stringify(createEmbeddings(body as EmbeddingRequest));
    if (embeddingCache.size >= embeddingCacheSize) {
      const oldest = embeddingCache.keys().next().value;
      if (oldest !== undefined) embeddingCache.delete(oldest);
    }
    embeddingCache.set(text, answer);
  }
  return sendJson(res, 200, answer, headers);
}

/** What a chat answer needs from the server and from its request. */
export interface ChatContext {
  headers: Record<string, string>;
  /** The fault drawn for this request, if any: its `brokenStreamAfterChunks` wins over the knob's. */
  fault: FailSpec | undefined;
  /** The knobs as they are now: read after `onChatRequest`, which may change them. */
  faults: () => MockFaults;
  onChatRequest: ((body: ChatCompletionRequest) => void) | undefined;
  /** Counts a stream in the server's stats (which `resetStats` may have replaced meanwhile). */
  countStream: () => void;
  /** Aborted when the client closes before the answer is complete. */
  signal: AbortSignal;
  /** Cuts the connection (a broken stream). */
  destroy: () => void;
}

/** `POST /v1/chat/completions`. */
export function answerChat(res: ServerResponse, body: unknown, context: ChatContext): void | Promise<void> {
  const { headers, fault, onChatRequest } = context;
  const invalid = validateChatCompletionRequest(body);
  if (invalid) return sendJson(res, 400, errorBody(invalid.message, "invalid_request_error", invalid.param), headers);
  const request = body as ChatCompletionRequest;
  onChatRequest?.(request);
  const faults = context.faults();
  const recount = faults.bytesPerToken;
  if (request.stream !== true) {
    const completion = createChatCompletion(request);
    if (recount !== null && completion.usage) {
      completion.usage = withPromptTokens(completion.usage, promptTokensByBytes(request, recount));
    }
    return sendJson(res, 200, completion, headers);
  }
  context.countStream();
  const streamOptions = request.stream_options;
  const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true;
  const brokenAfter = fault?.brokenStreamAfterChunks ?? faults.brokenStreamAfterChunks;
  const chunks = createChatCompletionChunks(request, { includeUsage });
  const last = chunks.at(-1);
  if (recount !== null && last?.usage) last.usage = withPromptTokens(last.usage, promptTokensByBytes(request, recount));
  return writeStream(res, chunks, {
    headers,
    chunkDelayMs: faults.streamChunkDelayMs,
    brokenAfter,
    signal: context.signal,
    destroy: context.destroy,
  });
}
