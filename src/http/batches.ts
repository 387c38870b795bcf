import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { BatchRecord, BatchRepository } from "../db/batches.ts";
import { requestStatuses } from "../db/types.ts";
import { AppError } from "../errors.ts";
import { isId } from "../ids.ts";
import type { Acceptance } from "../queue/accept.ts";
import { chatRequestSchema, createRequestSchema, problemSchema } from "../requests/schemas.ts";
import { callerOf } from "./auth.ts";
import { cacheModeOf } from "./requests.ts";

export interface BatchRoutesDeps {
  acceptance: Acceptance;
  batches: BatchRepository;
  /** The body limit of one request (BODY_LIMIT_BYTES); a batch may be `maxBatchSize` times it, up to 32 MiB. */
  bodyLimitBytes: number;
}

/** The most requests one batch takes. */
export const maxBatchSize = 1000;

const createBatchSchema = z.strictObject({
  requests: z
    .array(createRequestSchema)
    .min(1)
    .max(maxBatchSize)
    .describe(`1 to ${maxBatchSize} request bodies, as POST /requests takes them (without stream)`),
  metadata: chatRequestSchema.shape.metadata,
});

const batchSchema = z
  .object({
    id: z.string(),
    object: z.literal("batch"),
    status: z
      .enum(["queued", "in_progress", "completed", "cancelling", "cancelled"])
      .describe("completed: none is queued or running; cancelling: cancelled, some still running"),
    size: z.number(),
    counts: z.object(Object.fromEntries(requestStatuses.map((status) => [status, z.number()]))),
    metadata: z.record(z.string(), z.string()),
    created_at: z.string(),
    cancelled_at: z.string().nullable(),
  })
  .meta({ id: "Batch" });

function statusOf(batch: BatchRecord): z.output<typeof batchSchema>["status"] {
  const { queued, running } = batch.counts;
  if (batch.cancelledAt) return running > 0 ? "cancelling" : "cancelled";
  if (queued + running === 0) return "completed";
  return queued === batch.size ? "queued" : "in_progress";
}

function formatBatch(batch: BatchRecord) {
  return {
    id: batch.id,
    object: "batch" as const,
    status: statusOf(batch),
    size: batch.size,
    counts: batch.counts,
    metadata: batch.metadata,
    created_at: batch.createdAt.toISOString(),
    cancelled_at: batch.cancelledAt?.toISOString() ?? null,
  };
}

const idParams = z.object({ id: z.string().describe("bat_…") });

function batchId(id: string): string {
  if (!isId("bat", id)) {
    throw new AppError("invalid_request", "id: must be a batch id (bat_…)", {
      errors: [{ path: "id", message: "must be a batch id (bat_…)" }],
    });
  }
  return id;
}

export function registerBatchRoutes(app: FastifyInstance, deps: BatchRoutesDeps): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: problemSchema, 401: problemSchema, 404: problemSchema };

  routes.post("/requests/batch", {
    config: { access: "user" },
    bodyLimit: Math.min(deps.bodyLimitBytes * maxBatchSize, 32 * 1024 * 1024),
    schema: {
      summary: "Queue up to 1,000 requests to run in the background",
      description:
        "Every entry is validated first (422 naming `requests.<index>.<field>`); then all are queued or none. " +
        "Answers 202 with the batch; follow it with GET /batches/{id} and GET /requests?batch_id=…",
      tags: ["requests"],
      body: createBatchSchema,
      response: { 202: batchSchema, ...errors, 413: problemSchema, 415: problemSchema, 422: problemSchema },
    },
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const { requests, metadata } = request.body;
      const streamed = requests.findIndex((entry) => entry.stream === true);
      if (streamed >= 0) {
        const path = `requests.${streamed}.stream`;
        const message = "a request run in the background cannot be streamed";
        throw new AppError("validation_failed", `${path}: ${message}`, { errors: [{ path, message }] });
      }
      const { batch } = await deps.acceptance.batch(caller, requests, cacheModeOf(request), metadata ?? {});
      request.logFields = { userId: caller.user.id };
      return reply.code(202).header("location", `/batches/${batch.id}`).send(formatBatch(batch));
    },
  });

  routes.get("/batches/:id", {
    config: { access: "user" },
    schema: {
      summary: "A batch and its requests counted by status",
      tags: ["requests"],
      params: idParams,
      response: { 200: batchSchema, ...errors },
    },
    handler: async (request) => {
      const batch = await deps.batches.get(callerOf(request).user.id, batchId(request.params.id));
      if (!batch) throw new AppError("not_found", `no batch ${request.params.id}`);
      return formatBatch(batch);
    },
  });

  routes.post("/batches/:id/cancel", {
    config: { access: "user" },
    schema: {
      summary: "Cancel a batch: its requests not yet started are cancelled; running ones finish",
      tags: ["requests"],
      params: idParams,
      response: { 200: batchSchema, ...errors },
    },
    handler: async (request) => {
      const batch = await deps.batches.cancel(callerOf(request).user.id, batchId(request.params.id));
      if (!batch) throw new AppError("not_found", `no batch ${request.params.id}`);
      return formatBatch(batch);
    },
  });
}
