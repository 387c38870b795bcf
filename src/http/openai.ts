import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError, isAppError, toOpenAIError } from "../errors.ts";
import type { ChatCompletionChunk, ChatCompletionRequest, EmbeddingRequest } from "../providers/provider.ts";
import { isUsageChunk } from "../requests/chat-stream.ts";
import { storableString } from "../requests/schemas.ts";
import type { ChatStream, RequestService } from "../requests/request-service.ts";
import { callerOf } from "./auth.ts";
import { answerHeaders, sseHeaders } from "./answer-headers.ts";
import { callContext } from "./client-signal.ts";
import type { IdempotencyHooks } from "./idempotency.ts";
import { cacheModeOf } from "./requests.ts";

export interface OpenAIRoutesDeps {
  requestService: RequestService;
  idempotency: IdempotencyHooks;
}

/**
 * OpenAI's own API, so its client libraries work unchanged against `http://HOST:PORT/v1`. Bodies pass through
 * untouched: only what the gateway itself reads is checked here, the upstream judges the rest and its 400s come
 * back as they are.
 */
const chatMessage = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
});

const chatCompletionBody = z
  .looseObject({
    model: storableString().min(1),
    messages: z.array(chatMessage).min(1),
    stream: z.boolean().nullable().optional(),
    stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  })
  .describe("OpenAI's CreateChatCompletionRequest; every field is passed on to the model.")
  .meta({ id: "CreateChatCompletionRequest" });

const embeddingInput = z.union([
  z.string(),
  z.array(z.string()).min(1),
  z.array(z.number().int()).min(1),
  z.array(z.array(z.number().int()).min(1)).min(1),
]);

const embeddingBody = z
  .looseObject({ model: storableString().min(1), input: embeddingInput })
  .describe("OpenAI's CreateEmbeddingRequest.")
  .meta({ id: "CreateEmbeddingRequest" });

const openAIError = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string().nullable(),
    }),
  })
  .meta({ id: "OpenAIError" });

const errors = { 400: openAIError, 401: openAIError, 429: openAIError, 502: openAIError, 504: openAIError };
const passThrough = z.unknown().describe("OpenAI's answer object, as the model gave it");

export function registerOpenAIRoutes(app: FastifyInstance, deps: OpenAIRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const tags = ["openai"];

  routes.post("/v1/chat/completions", {
    config: { access: "user" },
    preHandler: deps.idempotency.preHandler,
    onSend: deps.idempotency.onSend,
    schema: {
      summary: "Chat completion (OpenAI-compatible; stream: true answers server-sent events ending in [DONE])",
      tags,
      body: chatCompletionBody,
      response: { 200: passThrough, ...errors },
    },
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const body = request.body as ChatCompletionRequest;
      request.logFields = { userId: caller.user.id, type: "chat", model: body.model };
      const context = callContext(cacheModeOf(request), reply);

      if (body.stream) {
        const started = await deps.requestService.chatCompletionStream(caller, body, context);
        request.logFields.cache = started.cache;
        const includeUsage = request.body.stream_options?.include_usage === true;
        reply.code(200).headers({ ...sseHeaders, ...answerHeaders(started) });
        return reply.send(Readable.from(openAIEvents(started.chunks, includeUsage, request)) as never);
      }

      const outcome = await deps.requestService.chatCompletion(caller, body, context);
      request.logFields.cache = outcome.cache;
      request.logFields.requestRecordId = outcome.record.id;
      return reply.headers(answerHeaders(outcome)).send(outcome.value);
    },
  });

  routes.post("/v1/embeddings", {
    config: { access: "user" },
    preHandler: deps.idempotency.preHandler,
    onSend: deps.idempotency.onSend,
    schema: {
      summary: "Embeddings (OpenAI-compatible)",
      tags,
      body: embeddingBody,
      response: { 200: passThrough, ...errors },
    },
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const body = request.body as EmbeddingRequest;
      request.logFields = { userId: caller.user.id, type: "embed", model: body.model };
      const outcome = await deps.requestService.embeddings(caller, body, callContext(cacheModeOf(request), reply));
      request.logFields.cache = outcome.cache;
      request.logFields.requestRecordId = outcome.record.id;
      return reply.headers(answerHeaders(outcome)).send(outcome.value);
    },
  });
}

/**
 * OpenAI's stream: `data: <chunk>` lines ending in `data: [DONE]`. The upstream is always asked for usage (so it
 * is recorded); the client sees the usage chunk only if it asked for it, as from OpenAI itself. A failure midway
 * ends the stream with an error event in OpenAI's shape, which the SDKs raise as an APIError.
 */
async function* openAIEvents(
  chunks: ChatStream["chunks"],
  includeUsage: boolean,
  request: FastifyRequest,
): AsyncGenerator<string> {
  try {
    let next = await chunks.next();
    while (!next.done) {
      const chunk = includeUsage ? next.value : withoutUsage(next.value);
      if (chunk) yield `data: ${JSON.stringify(chunk)}\n\n`;
      next = await chunks.next();
    }
    request.logFields.requestRecordId = next.value.id;
    yield "data: [DONE]\n\n";
  } catch (error) {
    const appError = isAppError(error) ? error : new AppError("internal", "the stream failed");
    yield `data: ${JSON.stringify(toOpenAIError(appError))}\n\n`;
  } finally {
    // The client went away: stop the upstream and store what was produced.
    await chunks.return(undefined as never).catch(() => {});
  }
}

function withoutUsage(chunk: ChatCompletionChunk): ChatCompletionChunk | undefined {
  if (isUsageChunk(chunk)) return undefined;
  if (!("usage" in chunk)) return chunk;
  const { usage: _usage, ...rest } = chunk;
  return rest as ChatCompletionChunk;
}
