import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { WebhookRecord, WebhookRepository } from "../db/webhooks.ts";
import { AppError } from "../errors.ts";
import { isId } from "../ids.ts";
import { problemSchema } from "../requests/schemas.ts";
import { WebhookUrlError } from "../webhooks/address-guard.ts";
import { type WebhookService, webhookEvents } from "../webhooks/webhooks.ts";
import { callerOf } from "./auth.ts";

export interface WebhookRoutesDeps {
  webhooks: WebhookRepository;
  webhookService: WebhookService;
}

const createWebhookSchema = z.strictObject({
  url: z.string().min(1).max(2048).describe("http(s); must resolve to public addresses"),
  events: z
    .array(z.enum(webhookEvents))
    .min(1)
    .default([...webhookEvents])
    .describe("Which events to receive; default both"),
});

const webhookSchema = z
  .object({
    id: z.string(),
    object: z.literal("webhook"),
    url: z.string(),
    events: z.array(z.string()),
    created_at: z.string(),
    previous_secret_expires_at: z
      .string()
      .nullable()
      .describe("After a rotation: until when the previous secret signs too"),
  })
  .meta({ id: "Webhook" });

const webhookWithSecretSchema = webhookSchema
  .extend({ secret: z.string().describe("whsec_…: shown only now; verify deliveries with it") })
  .meta({ id: "WebhookWithSecret" });

const deliverySchema = z
  .object({
    id: z.string().describe("msg_…: the webhook-id header, the same on every attempt"),
    object: z.literal("webhook_delivery"),
    request_id: z.string(),
    event: z.string(),
    status: z.enum(["pending", "delivered", "failed"]),
    created_at: z.string(),
    delivered_at: z.string().nullable(),
    attempts: z.array(
      z.object({
        attempted_at: z.string(),
        status_code: z.number().nullable(),
        error: z.string().nullable(),
        duration_ms: z.number(),
        response_body: z.string().describe("The start of the receiver's answer"),
      }),
    ),
  })
  .meta({ id: "WebhookDelivery" });

function formatWebhook(webhook: WebhookRecord) {
  const rotating = webhook.previousSecretExpiresAt && webhook.previousSecretExpiresAt > new Date();
  return {
    id: webhook.id,
    object: "webhook" as const,
    url: webhook.url,
    events: webhook.events,
    created_at: webhook.createdAt.toISOString(),
    previous_secret_expires_at: rotating ? (webhook.previousSecretExpiresAt?.toISOString() ?? null) : null,
  };
}

function checkedId(prefix: "whk" | "msg", id: string, path: string): string {
  if (!isId(prefix, id)) {
    const message = `must be a ${prefix === "whk" ? "webhook" : "delivery"} id (${prefix}_…)`;
    throw new AppError("invalid_request", `${path}: ${message}`, { errors: [{ path, message }] });
  }
  return id;
}

const idParams = z.object({ id: z.string().describe("whk_…") });
const errors = { 400: problemSchema, 401: problemSchema, 404: problemSchema };

export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRoutesDeps): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const config = { access: "user" as const };

  async function ownWebhook(userId: string, id: string): Promise<WebhookRecord> {
    const webhook = await deps.webhooks.get(userId, checkedId("whk", id, "id"));
    if (!webhook) throw new AppError("not_found", `no webhook ${id}`);
    return webhook;
  }

  routes.post("/me/webhooks", {
    config,
    schema: {
      summary: "Register a webhook for your queued requests' events; its signing secret is shown only now",
      tags: ["webhooks"],
      body: createWebhookSchema,
      response: { 201: webhookWithSecretSchema, ...errors, 422: problemSchema },
    },
    handler: async (request, reply) => {
      const { user } = callerOf(request);
      try {
        const { webhook, secret } = await deps.webhookService.register(user.id, request.body.url, request.body.events);
        return reply
          .code(201)
          .header("cache-control", "no-store")
          .send({ ...formatWebhook(webhook), secret });
      } catch (error) {
        if (error instanceof WebhookUrlError) {
          throw new AppError("validation_failed", `url: ${error.message}`, {
            errors: [{ path: "url", message: error.message }],
          });
        }
        throw error;
      }
    },
  });

  routes.get("/me/webhooks", {
    config,
    schema: {
      summary: "Your webhooks (their secrets are never shown again)",
      tags: ["webhooks"],
      response: { 200: z.object({ data: z.array(webhookSchema) }), ...errors },
    },
    handler: async (request) => ({
      data: (await deps.webhooks.list(callerOf(request).user.id)).map(formatWebhook),
    }),
  });

  routes.delete("/me/webhooks/:id", {
    config,
    schema: {
      summary: "Delete a webhook and its deliveries",
      tags: ["webhooks"],
      params: idParams,
      response: { 204: z.null().describe("Deleted"), ...errors },
    },
    handler: async (request, reply) => {
      const { user } = callerOf(request);
      if (!(await deps.webhooks.delete(user.id, checkedId("whk", request.params.id, "id")))) {
        throw new AppError("not_found", `no webhook ${request.params.id}`);
      }
      return reply.code(204).send(null);
    },
  });

  routes.post("/me/webhooks/:id/rotate-secret", {
    config,
    schema: {
      summary: "A new signing secret, shown only now; the previous one keeps signing beside it for 24 hours",
      tags: ["webhooks"],
      params: idParams,
      response: { 200: webhookWithSecretSchema, ...errors },
    },
    handler: async (request, reply) => {
      const { user } = callerOf(request);
      const rotated = await deps.webhookService.rotate(user.id, checkedId("whk", request.params.id, "id"));
      if (!rotated) throw new AppError("not_found", `no webhook ${request.params.id}`);
      return reply
        .header("cache-control", "no-store")
        .send({ ...formatWebhook(rotated.webhook), secret: rotated.secret });
    },
  });

  routes.get("/me/webhooks/:id/deliveries", {
    config,
    schema: {
      summary: "A webhook's deliveries, newest first, with every attempt",
      tags: ["webhooks"],
      params: idParams,
      querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20) }),
      response: { 200: z.object({ data: z.array(deliverySchema) }), ...errors },
    },
    handler: async (request) => {
      const webhook = await ownWebhook(callerOf(request).user.id, request.params.id);
      const deliveries = await deps.webhooks.deliveries(webhook.id, request.query.limit);
      return {
        data: deliveries.map((delivery) => ({
          id: delivery.id,
          object: "webhook_delivery" as const,
          request_id: delivery.requestId,
          event: delivery.event,
          status: delivery.status,
          created_at: delivery.createdAt.toISOString(),
          delivered_at: delivery.deliveredAt?.toISOString() ?? null,
          attempts: delivery.attemptList.map((attempt) => ({
            attempted_at: attempt.attemptedAt.toISOString(),
            status_code: attempt.statusCode,
            error: attempt.error,
            duration_ms: attempt.durationMs,
            response_body: attempt.responseBody,
          })),
        })),
      };
    },
  });

  routes.post("/me/webhooks/:id/deliveries/:deliveryId/redeliver", {
    config,
    schema: {
      summary: "Send a delivery again (same message id and payload, signed anew)",
      tags: ["webhooks"],
      params: z.object({ id: z.string().describe("whk_…"), deliveryId: z.string().describe("msg_…") }),
      response: { 202: z.object({ id: z.string(), status: z.literal("pending") }), ...errors },
    },
    handler: async (request, reply) => {
      const webhook = await ownWebhook(callerOf(request).user.id, request.params.id);
      const deliveryId = checkedId("msg", request.params.deliveryId, "deliveryId");
      const delivery = await deps.webhooks.delivery(deliveryId);
      if (!delivery || delivery.webhookId !== webhook.id) throw new AppError("not_found", `no delivery ${deliveryId}`);
      await deps.webhookService.redeliver(deliveryId);
      return reply.code(202).send({ id: deliveryId, status: "pending" as const });
    },
  });
}
