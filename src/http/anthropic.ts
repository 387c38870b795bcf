import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError, isAppError, toAnthropicError } from "../errors.ts";
import type { ChatCompletionRequest } from "../providers/provider.ts";
import type { ProviderRouter } from "../providers/routing.ts";
import { messageIdOf } from "../requests/anthropic/mappings.ts";
import { fromAnthropicRequest } from "../requests/anthropic/request.ts";
import { toAnthropicMessage } from "../requests/anthropic/response.ts";
import { createEventTranslator, formatSse } from "../requests/anthropic/stream.ts";
import type { ChatStream, RequestService } from "../requests/request-service.ts";
import { countPromptTokens } from "../tokens.ts";
import { answerHeaders, sseHeaders } from "./answer-headers.ts";
import { callerOf } from "./auth.ts";
import { callContext } from "./client-signal.ts";
import type { IdempotencyHooks } from "./idempotency.ts";
import { cacheModeOf } from "./requests.ts";

export interface AnthropicRoutesDeps {
  requestService: RequestService;
  provider: ProviderRouter;
  idempotency: IdempotencyHooks;
}

/**
 * Anthropic's Messages API, so its SDKs and the tools built on them (Claude Code) work unchanged against
 * `http://HOST:PORT`: any model, any provider. The body is checked and translated by requests/anthropic/ (its errors
 * name Anthropic's paths); errors here take Anthropic's shape and statuses (error-handler.ts).
 */
const messagesBody = z
  .looseObject({})
  .describe("Anthropic's MessageCreateParams; translated to the provider that serves the model.")
  .meta({ id: "AnthropicMessageCreateParams" });

const anthropicError = z
  .object({ type: z.literal("error"), error: z.object({ type: z.string(), message: z.string() }) })
  .meta({ id: "AnthropicError" });
const errors = { 400: anthropicError, 401: anthropicError, 404: anthropicError, 429: anthropicError };
const passThrough = z.unknown().describe("Anthropic's Message object");

export function registerAnthropicRoutes(app: FastifyInstance, deps: AnthropicRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const tags = ["anthropic"];

  routes.post("/v1/messages", {
    config: { access: "user" },
    preHandler: deps.idempotency.preHandler,
    onSend: deps.idempotency.onSend,
    schema: {
      summary: "Messages (Anthropic-compatible; stream: true answers Anthropic's server-sent events)",
      tags,
      body: messagesBody,
      response: { 200: passThrough, ...errors },
    },
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const asked = fromAnthropicRequest(request.body);
      request.logFields = { userId: caller.user.id, type: "chat", model: asked.model };
      const context = callContext(cacheModeOf(request), reply);

      if (asked.stream) {
        const started = await deps.requestService.messagesStream(caller, asked, context);
        request.logFields.cache = started.cache;
        reply.code(200).headers({ ...sseHeaders, ...answerHeaders(started) });
        return reply.send(Readable.from(anthropicEvents(started.chunks, asked, request)) as never);
      }

      const outcome = await deps.requestService.messages(caller, asked, context);
      request.logFields.cache = outcome.cache;
      request.logFields.requestRecordId = outcome.record.id;
      return reply.headers(answerHeaders(outcome)).send(toAnthropicMessage(outcome.value, { model: asked.model }));
    },
  });

  routes.post("/v1/messages/count_tokens", {
    config: { access: "user" },
    schema: {
      summary: "Count a message's input tokens (Anthropic-compatible)",
      tags,
      body: messagesBody,
      response: { 200: z.object({ input_tokens: z.number().int() }), ...errors },
    },
    handler: async (request) => {
      const body = request.body as Record<string, unknown>;
      // count_tokens takes no max_tokens; the translation wants one and it changes nothing in the count.
      const asked = fromAnthropicRequest({ ...body, max_tokens: body.max_tokens ?? 1, stream: false });
      const counted = await deps.provider.countInputTokens(asked);
      return { input_tokens: counted ?? countPromptTokens(asked.messages, asked.tools) };
    },
  });
}

/**
 * Anthropic's event stream from the pipeline's chunks (requests/anthropic/stream.ts keeps the order exact). A
 * failure midway ends it with an `error` event, which Anthropic's SDKs raise as an APIError.
 */
async function* anthropicEvents(
  chunks: ChatStream["chunks"],
  asked: ChatCompletionRequest,
  request: FastifyRequest,
): AsyncGenerator<string> {
  let translator: ReturnType<typeof createEventTranslator> | undefined;
  const translatorFor = (id: string) => {
    translator ??= createEventTranslator({
      model: asked.model,
      messageId: messageIdOf(id),
      inputTokens: countPromptTokens(asked.messages, asked.tools),
    });
    return translator;
  };
  try {
    let next = await chunks.next();
    while (!next.done) {
      for (const event of translatorFor(next.value.id).push(next.value)) yield formatSse(event);
      next = await chunks.next();
    }
    request.logFields.requestRecordId = next.value.id;
    for (const event of translatorFor(next.value.id).end()) yield formatSse(event);
  } catch (error) {
    const appError = isAppError(error) ? error : new AppError("internal", "the stream failed");
    const { body } = toAnthropicError(appError);
    for (const event of translatorFor("failed").error(body.error.message, body.error.type as never)) {
      yield formatSse(event);
    }
  } finally {
    // The client went away: stop the upstream and store what was produced.
    await chunks.return(undefined as never).catch(() => {});
  }
}
