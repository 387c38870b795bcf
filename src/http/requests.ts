import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { Readable } from "node:stream";
import { AppError, isAppError, toProblem } from "../errors.ts";
import type { RequestRepository } from "../db/requests.ts";
import { isId } from "../ids.ts";
import { formatRequest } from "../requests/format.ts";
import type { CacheMode, ChatStream, RequestService } from "../requests/request-service.ts";
import {
  adminListRequestsQuerySchema,
  createRequestSchema,
  listRequestsQuerySchema,
  problemSchema,
  requestListSchema,
  requestObjectSchema,
} from "../requests/schemas.ts";
import { callerOf } from "./auth.ts";
import { answerHeaders, sseHeaders } from "./answer-headers.ts";
import { callContext } from "./client-signal.ts";
import type { IdempotencyHooks } from "./idempotency.ts";
import type { Acceptance } from "../queue/accept.ts";

export interface RequestRoutesDeps {
  requestService: RequestService;
  acceptance: Acceptance;
  requests: RequestRepository;
  idempotency: IdempotencyHooks;
}

const idParams = z.object({ id: z.string().describe("req_…") });
const errors = { 400: problemSchema, 401: problemSchema, 404: problemSchema };

/** Cache-Control from the client: no-store wins over no-cache, as in HTTP caching. */
export function cacheModeOf(request: FastifyRequest): CacheMode {
  const header = request.headers["cache-control"];
  if (!header) return "use";
  const directives = header.toLowerCase();
  if (directives.includes("no-store")) return "bypass";
  if (directives.includes("no-cache")) return "refresh";
  return "use";
}

/** RFC 7240: whether `Prefer` asks for `respond-async` (preferences are comma-separated, names case-insensitive). */
export function prefersAsync(prefer: string | undefined): boolean {
  if (!prefer) return false;
  return prefer
    .split(",")
    .some((preference) => preference.split(/[;=]/, 1)[0]?.trim().toLowerCase() === "respond-async");
}

type ListQuery = z.output<typeof listRequestsQuerySchema>;

function listQuery(query: ListQuery, userId: string | undefined) {
  const { limit, cursor, type, status, model, provider, from, to, batch_id } = query;
  return {
    limit,
    ...(userId !== undefined && { userId }),
    ...(cursor !== undefined && { cursor }),
    ...(type !== undefined && { type }),
    ...(status !== undefined && { status }),
    ...(model !== undefined && { model }),
    ...(provider !== undefined && { provider }),
    ...(batch_id !== undefined && { batchId: batch_id }),
    ...(from !== undefined && { from: new Date(from) }),
    ...(to !== undefined && { to: new Date(to) }),
  };
}

function requestId(id: string): string {
  if (!isId("req", id)) {
    throw new AppError("invalid_request", "id: must be a request id (req_…)", {
      errors: [{ path: "id", message: "must be a request id (req_…)" }],
    });
  }
  return id;
}

/**
 * The native stream: `delta` events with text as it arrives, then `done` with the stored request object, or
 * `error` with a problem document when the upstream fails midway.
 */
async function* nativeEvents(chunks: ChatStream["chunks"], request: FastifyRequest): AsyncGenerator<string> {
  try {
    let next = await chunks.next();
    while (!next.done) {
      const text = next.value.choices[0]?.delta.content;
      if (text) yield `event: delta\ndata: ${JSON.stringify({ delta: text })}\n\n`;
      next = await chunks.next();
    }
    request.logFields.model = next.value.model;
    request.logFields.requestRecordId = next.value.id;
    yield `event: done\ndata: ${JSON.stringify(formatRequest(next.value))}\n\n`;
  } catch (error) {
    const problem = toProblem(isAppError(error) ? error : new AppError("internal", "the stream failed"), request.id);
    yield `event: error\ndata: ${JSON.stringify(problem)}\n\n`;
  } finally {
    // The client went away: stop the upstream and store what was produced.
    await chunks.return(undefined as never).catch(() => {});
  }
}

export function registerRequestRoutes(app: FastifyInstance, deps: RequestRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post("/requests", {
    config: { access: "user" },
    preHandler: deps.idempotency.preHandler,
    onSend: deps.idempotency.onSend,
    schema: {
      summary: "Run a request (chat, summarize, translate, classify, extract, embed)",
      description:
        "Answers 201 with the request object. With `stream: true` (chat, summarize, translate) the answer is " +
        "`text/event-stream`: `delta` events `{delta}` as text arrives, then one `done` event with the request " +
        "object, or an `error` event with a problem document if the upstream fails midway.",
      tags: ["requests"],
      body: createRequestSchema,
      headers: z.object({
        "cache-control": z
          .string()
          .optional()
          .describe("no-cache: refresh the cached answer; no-store: bypass the cache"),
        "idempotency-key": z
          .string()
          .optional()
          .describe("A retry with the same key and body gets the first answer, and is not run or billed again (24 h)"),
        prefer: z
          .string()
          .optional()
          .describe(
            "respond-async: answer 202 at once with the queued request; it runs in the background (poll " +
              "GET /requests/{id}, or receive a webhook)",
          ),
      }),
      response: {
        201: requestObjectSchema,
        202: requestObjectSchema,
        ...errors,
        413: problemSchema,
        415: problemSchema,
        422: problemSchema,
        502: problemSchema,
        504: problemSchema,
      },
    },
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const body = request.body;
      request.logFields = { userId: caller.user.id, type: body.type };
      if (prefersAsync(request.headers.prefer)) {
        if (body.stream === true) {
          const message = "a request run in the background (Prefer: respond-async) cannot be streamed";
          throw new AppError("invalid_request", `stream: ${message}`, { errors: [{ path: "stream", message }] });
        }
        const queued = await deps.acceptance.one(caller, body, cacheModeOf(request));
        request.logFields.requestRecordId = queued.id;
        return reply
          .code(202)
          .header("location", `/requests/${queued.id}`)
          .header("preference-applied", "respond-async")
          .send(formatRequest(queued));
      }
      const context = callContext(cacheModeOf(request), reply);

      if ((body.type === "chat" || body.type === "summarize" || body.type === "translate") && body.stream) {
        const started = await deps.requestService.createStream(caller, body, context);
        request.logFields.cache = started.cache;
        reply.code(201).headers({ ...sseHeaders, ...answerHeaders(started) });
        // The response schema describes the JSON answer; a stream is sent as it is.
        return reply.send(Readable.from(nativeEvents(started.chunks, request)) as never);
      }

      const outcome = await deps.requestService.create(caller, body, context);
      request.logFields.model = outcome.record.model;
      request.logFields.cache = outcome.cache;
      request.logFields.requestRecordId = outcome.record.id;
      return reply
        .code(201)
        .headers(answerHeaders(outcome))
        .header("location", `/requests/${outcome.record.id}`)
        .send(formatRequest(outcome.record));
    },
  });

  routes.get("/requests/:id", {
    config: { access: "user" },
    schema: {
      summary: "A stored request with its input and options",
      tags: ["requests"],
      params: idParams,
      response: { 200: requestObjectSchema, ...errors },
    },
    handler: async (request) => {
      const caller = callerOf(request);
      const record = await deps.requests.get(caller.user.id, requestId(request.params.id));
      if (!record) throw new AppError("not_found", `no request ${request.params.id}`);
      return formatRequest(record, true);
    },
  });

  routes.get("/requests", {
    config: { access: "user" },
    schema: {
      summary: "The caller's requests, newest first",
      tags: ["requests"],
      querystring: listRequestsQuerySchema,
      response: { 200: requestListSchema, ...errors },
    },
    handler: async (request) => {
      const caller = callerOf(request);
      const page = await deps.requests.list(listQuery(request.query, caller.user.id));
      return { data: page.data.map((record) => formatRequest(record)), next_cursor: page.nextCursor };
    },
  });

  routes.get("/admin/requests", {
    config: { access: "admin" },
    schema: {
      summary: "Everyone's requests (or one user's), newest first, with the same filters",
      tags: ["admin"],
      querystring: adminListRequestsQuerySchema,
      response: { 200: requestListSchema, ...errors, 403: problemSchema },
    },
    handler: async (request) => {
      const page = await deps.requests.list(listQuery(request.query, request.query.user_id));
      return {
        data: page.data.map((record) => ({ ...formatRequest(record), user_id: record.userId })),
        next_cursor: page.nextCursor,
      };
    },
  });

  routes.get("/admin/requests/:id", {
    config: { access: "admin" },
    schema: {
      summary: "Anyone's request, with its input and options",
      tags: ["admin"],
      params: idParams,
      response: { 200: requestObjectSchema, ...errors, 403: problemSchema },
    },
    handler: async (request) => {
      const record = await deps.requests.getAny(requestId(request.params.id));
      if (!record) throw new AppError("not_found", `no request ${request.params.id}`);
      return { ...formatRequest(record, true), user_id: record.userId };
    },
  });

  routes.delete("/requests/:id", {
    config: { access: "user" },
    schema: {
      summary: "Delete a request's stored input and output",
      tags: ["requests"],
      params: idParams,
      response: { 204: z.null().describe("Deleted"), ...errors },
    },
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const deleted = await deps.requests.softDelete(caller.user.id, requestId(request.params.id));
      if (!deleted) throw new AppError("not_found", `no request ${request.params.id}`);
      return reply.code(204).send(null);
    },
  });
}
