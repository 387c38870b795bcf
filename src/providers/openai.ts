/**
 * The real provider: OpenAI's HTTP API (or any compatible upstream), through upstream-http.ts (an undici Pool with
 * keep-alive, deadlines and the retry policy). This module holds what is OpenAI's own: its routes, its headers, its
 * error body, and its stream's chunks ending with `[DONE]`.
 */
import { AppError } from "../errors.ts";
import type {
  CallOptions,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  ModelList,
  Provider,
} from "./provider.ts";
import { isRecord } from "../is-record.ts";
import { withoutAnthropicExtensions } from "./openai-extensions.ts";
import { parseEventData } from "./sse.ts";
import { createUpstreamHttp, type UpstreamHttpOptions } from "./upstream-http.ts";

export interface OpenAIProviderOptions extends Omit<UpstreamHttpOptions, "secret"> {
  /** Sent as `Authorization: Bearer …` (or in `apiKeyHeader`); never logged nor put in an error message. */
  apiKey: string | undefined;
  /** Default `openai`; a PROVIDERS_FILE provider's own name. */
  name?: string;
  /** `authorization` (default): `Bearer <key>`; another header (Azure's `api-key`) gets the key as it is. */
  apiKeyHeader?: string;
  /** Sent with every call (a PROVIDERS_FILE provider's `headers`). */
  headers?: Record<string, string>;
}

/** OpenAI's error body: `{"error": {"message", "param", …}}` (or, from some compatible servers, a bare string). */
function readOpenAIError(body: unknown): { message?: string; param?: string } {
  const error = isRecord(body) ? body.error : undefined;
  if (typeof error === "string") return { message: error };
  if (!isRecord(error)) return {};
  return {
    message: typeof error.message === "string" ? error.message : undefined,
    param: typeof error.param === "string" ? error.param : undefined,
  };
}

export function createOpenAIProvider(options: OpenAIProviderOptions): Provider {
  const { apiKey, apiKeyHeader = "authorization" } = options;
  const http = createUpstreamHttp({ ...options, secret: apiKey ?? "" }, readOpenAIError);
  const auth: Record<string, string> =
    apiKey === undefined ? {} : { [apiKeyHeader]: apiKeyHeader === "authorization" ? `Bearer ${apiKey}` : apiKey };
  const common = { ...options.headers, ...auth, "content-type": "application/json" };
  const jsonHeaders = { ...common, accept: "application/json" };
  const streamHeaders = { ...common, accept: "text/event-stream" };

  return {
    name: options.name ?? "openai",

    chatCompletion(asked, callOptions) {
      const body = withoutAnthropicExtensions(asked);
      // A streaming flag here would get SSE back; this call wants one JSON answer.
      const plain =
        body.stream !== undefined || body.stream_options !== undefined
          ? { ...body, stream: undefined, stream_options: undefined }
          : body;
      return http.requestJson<ChatCompletion>(
        "POST",
        "/chat/completions",
        JSON.stringify(plain),
        jsonHeaders,
        callOptions,
      );
    },

    embeddings(body: EmbeddingRequest, callOptions?: CallOptions) {
      return http.requestJson<EmbeddingResponse>("POST", "/embeddings", JSON.stringify(body), jsonHeaders, callOptions);
    },

    async listModels(callOptions?: CallOptions) {
      return (await http.requestJson<ModelList>("GET", "/models", undefined, jsonHeaders, callOptions)).value;
    },

    async *chatCompletionStream(asked: ChatCompletionRequest, callOptions?: CallOptions) {
      const body = withoutAnthropicExtensions(asked);
      const streamOptions = isRecord(body.stream_options) ? body.stream_options : {};
      const payload = JSON.stringify({
        ...body,
        stream: true,
        stream_options: { ...streamOptions, include_usage: true },
      });
      const events = http.streamEvents("/chat/completions", payload, streamHeaders, callOptions, isDone);
      for await (const data of events) yield parseChunk(data);
    },

    close() {
      return http.close();
    },
  };
}

const isDone = (data: string) => data === "[DONE]";

function parseChunk(data: string): ChatCompletionChunk {
  const parsed = parseEventData(data);
  if (isRecord(parsed) && parsed.error !== undefined && parsed.choices === undefined) {
    const error = parsed.error;
    const message = isRecord(error) && typeof error.message === "string" ? error.message : "unknown error";
    throw new AppError("upstream_error", `the upstream reported an error mid-stream: ${message}`);
  }
  return parsed as ChatCompletionChunk;
}
