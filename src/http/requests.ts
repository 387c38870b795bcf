import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError } from "../errors.ts";
import { InvalidCursorError } from "../db/cursor.ts";
import type { RequestRepository } from "../db/requests.ts";
import { isId } from "../ids.ts";
import { formatRequest } from "../requests/format.ts";
import type { CacheMode, RequestService } from "../requests/request-service.ts";
import {
  createRequestSchema,
  listRequestsQuerySchema,
  problemSchema,
  requestListSchema,
  requestObjectSchema,
} from "../requests/schemas.ts";
import { callerOf } from "./auth.ts";

export interface RequestRoutesDeps {
  requestService: RequestService;
  requests: RequestRepository;
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

function requestId(id: string): string {
  if (!isId("req", id)) {
    throw new AppError("invalid_request", "id: must be a request id (req_…)", {
      errors: [{ path: "id", message: "must be a request id (req_…)" }],
    });
  }
  return id;
}

/** A client that goes away before its answer cancels the upstream call. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort(new Error("the client closed the connection"));
  });
  return controller.signal;
}

export function registerRequestRoutes(app: FastifyInstance, deps: RequestRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post("/requests", {
    config: { access: "user" },
    schema: {
      summary: "Run a request (chat, summarize, translate, classify, extract, embed)",
      tags: ["requests"],
      body: createRequestSchema,
      headers: z.object({
        "cache-control": z
          .string()
          .optional()
          .describe("no-cache: refresh the cached answer; no-store: bypass the cache"),
      }),
      response: {
        201: requestObjectSchema,
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
      request.logFields = { userId: caller.user.id, type: request.body.type };
      const outcome = await deps.requestService.create(
        { user: caller.user, apiKeyId: caller.key?.id ?? null },
        request.body,
        { cacheMode: cacheModeOf(request), signal: abortOnClose(reply) },
      );
      request.logFields.model = outcome.record.model;
      request.logFields.cache = outcome.cache;
      request.logFields.requestRecordId = outcome.record.id;
      return reply
        .code(201)
        .header("location", `/requests/${outcome.record.id}`)
        .header("x-cache", outcome.cache)
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
      const { limit, cursor, type, status } = request.query;
      try {
        const page = await deps.requests.list({ userId: caller.user.id, limit, cursor, type, status });
        return { data: page.data.map((record) => formatRequest(record)), next_cursor: page.nextCursor };
      } catch (error) {
        if (error instanceof InvalidCursorError) {
          throw new AppError("invalid_request", "cursor: not a cursor this endpoint returned", {
            errors: [{ path: "cursor", message: "not a cursor this endpoint returned" }],
          });
        }
        throw error;
      }
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
