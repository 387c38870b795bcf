/**
 * Anthropic, spoken natively: the Messages API over upstream-http.ts (its own undici pool, deadlines and retries;
 * 529 overloaded is retried like any 5xx). The service's chat calls are OpenAI-shaped; anthropic/request.ts,
 * response.ts and stream.ts translate them on the way out and back. Anthropic has no embeddings API.
 */
import type { Message, RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { AppError } from "../errors.ts";
import { isRecord } from "../is-record.ts";
import { toAnthropicRequest } from "./anthropic/request.ts";
import { fromAnthropicMessage } from "./anthropic/response.ts";
import { createChunkTranslator } from "./anthropic/stream.ts";
import type { CallOptions, ChatCompletionChunk, ChatCompletionRequest, ModelList, Provider } from "./provider.ts";
import { parseEventData } from "./sse.ts";
import { createUpstreamHttp, type UpstreamHttpOptions } from "./upstream-http.ts";

/** The API version every request names (Anthropic refuses a request without one). */
export const anthropicVersion = "2023-06-01";

export interface AnthropicProviderOptions extends Omit<UpstreamHttpOptions, "secret"> {
  /** Sent as `x-api-key`; never logged nor put in an error message. */
  apiKey: string;
  /** `max_tokens` when a call names none (Anthropic requires one). Default 4096. */
  defaultMaxTokens?: number;
}

/** Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`. */
function readAnthropicError(body: unknown): { message?: string } {
  const error = isRecord(body) ? body.error : undefined;
  if (!isRecord(error)) return {};
  const type = typeof error.type === "string" ? error.type : undefined;
  const message = typeof error.message === "string" ? error.message : undefined;
  return { message: type && message ? `${type}: ${message}` : (message ?? type) };
}

export function createAnthropicProvider(options: AnthropicProviderOptions): Provider {
  const { apiKey, defaultMaxTokens = 4096 } = options;
  const http = createUpstreamHttp({ ...options, secret: apiKey }, readAnthropicError);
  const common = { "x-api-key": apiKey, "anthropic-version": anthropicVersion, "content-type": "application/json" };
  const jsonHeaders = { ...common, accept: "application/json" };
  const streamHeaders = { ...common, accept: "text/event-stream" };

  return {
    name: "anthropic",

    async chatCompletion(body: ChatCompletionRequest, callOptions?: CallOptions) {
      const { params, structuredOutput } = toAnthropicRequest(body, { defaultMaxTokens });
      const call = await http.requestJson<Message>(
        "POST",
        "/v1/messages",
        JSON.stringify(params),
        jsonHeaders,
        callOptions,
      );
      return {
        value: fromAnthropicMessage(call.value, { model: body.model, ...(structuredOutput && { structuredOutput }) }),
        upstreamMs: call.upstreamMs,
      };
    },

    async *chatCompletionStream(body: ChatCompletionRequest, callOptions?: CallOptions) {
      const { params, structuredOutput } = toAnthropicRequest(body, { defaultMaxTokens });
      const translator = createChunkTranslator({ model: body.model, ...(structuredOutput && { structuredOutput }) });
      const payload = JSON.stringify({ ...params, stream: true });
      const events = http.streamEvents("/v1/messages", payload, streamHeaders, callOptions, isMessageStop);
      for await (const data of events) {
        for (const chunk of translator.push(parseEvent(data))) yield chunk;
      }
      // The stream's last event ends the iteration without being yielded: it carries nothing but the end, which
      // is when the translator gives the usage chunk.
      for (const chunk of translator.push({ type: "message_stop" })) yield chunk as ChatCompletionChunk;
    },

    async embeddings(body) {
      throw new AppError("invalid_request", `model "${body.model}": Anthropic has no embeddings API`, {
        param: "model",
        errors: [{ path: "model", message: "Anthropic models do not make embeddings" }],
      });
    },

    async countTokens(body: ChatCompletionRequest, callOptions?: CallOptions) {
      const { params } = toAnthropicRequest(body, { defaultMaxTokens });
      const { max_tokens: _maxTokens, ...counted } = params;
      const call = await http.requestJson<{ input_tokens?: unknown }>(
        "POST",
        "/v1/messages/count_tokens",
        JSON.stringify(counted),
        jsonHeaders,
        callOptions,
      );
      const tokens = call.value.input_tokens;
      if (typeof tokens !== "number") throw new AppError("upstream_error", "the upstream counted no input_tokens");
      return tokens;
    },

    async listModels(callOptions?: CallOptions): Promise<ModelList> {
      const call = await http.requestJson<unknown>("GET", "/v1/models?limit=1000", undefined, jsonHeaders, callOptions);
      const data = isRecord(call.value) && Array.isArray(call.value.data) ? call.value.data : [];
      return {
        object: "list",
        data: data.filter(isRecord).map((model) => ({
          id: String(model.id),
          object: "model" as const,
          created: typeof model.created_at === "string" ? Math.floor(Date.parse(model.created_at) / 1000) || 0 : 0,
          owned_by: "anthropic",
        })),
      };
    },

    close() {
      return http.close();
    },
  };
}

/** Cheap: the last event's data starts with its type (Anthropic writes `type` first). */
const isMessageStop = (data: string) =>
  data.startsWith('{"type":"message_stop"') || /"type"\s*:\s*"message_stop"/.test(data.slice(0, 40));

function parseEvent(data: string): RawMessageStreamEvent {
  const parsed = parseEventData(data);
  if (!isRecord(parsed) || typeof parsed.type !== "string") {
    throw new AppError("upstream_error", "the upstream sent an event without a type");
  }
  return parsed as unknown as RawMessageStreamEvent;
}
