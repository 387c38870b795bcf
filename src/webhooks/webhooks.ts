import type { Database } from "../db/client.ts";
import type { RequestRepository } from "../db/requests.ts";
import type { RequestRecord } from "../db/types.ts";
import type { WebhookRecord, WebhookRepository } from "../db/webhooks.ts";
import { newId } from "../ids.ts";
import type { Logger } from "../observability/logger.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { DeliveryJob, JobQueue } from "../queue/job-queue.ts";
import { formatRequest } from "../requests/format.ts";
import { resolveWebhookTarget } from "./address-guard.ts";
import { sendWebhook } from "./send-webhook.ts";
import { newWebhookSecret, type SecretBox, signatureHeaders } from "./signing.ts";

export const webhookEvents = ["request.completed", "request.failed"] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

/** How long a rotated-out secret still signs deliveries, so receivers can switch without missing one. */
export const previousSecretValidityMs = 24 * 3_600_000;
/** The most of a receiver's answer kept with an attempt. */
const maxResponseBytes = 1024;

export interface WebhookServiceDeps {
  database: Database;
  webhooks: WebhookRepository;
  requests: RequestRepository;
  queue: JobQueue;
  secretBox: SecretBox;
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Webhooks of users' queued requests: registration (the URL checked for where it leads, the secret sealed), the
 * outbox (a delivery per event and webhook written in one transaction with its queue job, so it is never lost), and
 * each delivery attempt (signed per Standard Webhooks, sent only to vetted public addresses, retried by the queue).
 */
export function createWebhookService(deps: WebhookServiceDeps) {
  const { webhooks, secretBox, metrics, logger } = deps;

  /** The secrets that sign now: the current one, and the previous one during its grace period. */
  function signingSecrets(webhook: WebhookRecord, now: Date): string[] {
    const secrets = [secretBox.open(webhook.secretSealed)];
    if (webhook.previousSecretSealed && webhook.previousSecretExpiresAt && webhook.previousSecretExpiresAt > now) {
      secrets.push(secretBox.open(webhook.previousSecretSealed));
    }
    return secrets;
  }

  return {
    /** Registers a webhook; the secret is in the answer only. Throws WebhookUrlError for a URL it will not call. */
    async register(userId: string, url: string, events: readonly WebhookEvent[]) {
      await resolveWebhookTarget(url, { allowPrivateNetworks: deps.allowPrivateNetworks });
      const secret = newWebhookSecret();
      const webhook = await webhooks.create({
        id: newId("whk"),
        userId,
        url,
        events: [...new Set(events)],
        secretSealed: secretBox.seal(secret),
        createdAt: new Date(),
      });
      return { webhook, secret };
    },

    /** A new secret; the old one keeps signing (beside it) for a day. Undefined for an unknown webhook. */
    async rotate(userId: string, id: string) {
      const secret = newWebhookSecret();
      const expiresAt = new Date(Date.now() + previousSecretValidityMs);
      const webhook = await webhooks.rotate(userId, id, secretBox.seal(secret), expiresAt);
      return webhook && { webhook, secret };
    },

    /**
     * The request is done: writes a delivery for each of its user's webhooks subscribed to its event, with its job,
     * unless written already (a job taken up again after its worker died calls this again). Safe to repeat.
     */
    async requestFinished(requestId: string, stored?: RequestRecord): Promise<void> {
      const record = stored ?? (await deps.requests.getAny(requestId));
      if (!record || (record.status !== "completed" && record.status !== "failed")) return;
      const event: WebhookEvent = record.status === "completed" ? "request.completed" : "request.failed";
      const subscribed = await webhooks.subscribed(record.userId, event);
      if (subscribed.length === 0) return;
      const payload = JSON.stringify({
        type: event,
        timestamp: (record.completedAt ?? new Date()).toISOString(),
        data: formatRequest(record),
      });
      await deps.database.transaction(async (runner) => {
        const added = await webhooks.addDeliveries(
          runner,
          subscribed.map((webhook) => ({ id: newId("msg"), webhookId: webhook.id, requestId, event, payload })),
        );
        await deps.queue.addDeliveries(runner, added);
      });
      deps.queue.wake();
    },

    /** Sends a delivery again (asked by its user): a new job, the same message id and payload. */
    async redeliver(deliveryId: string): Promise<void> {
      // Pending exactly when a job will send it.
      await deps.database.transaction(async (runner) => {
        await webhooks.reopen(runner, deliveryId);
        await deps.queue.addDeliveries(runner, [deliveryId]);
      });
      deps.queue.wake();
    },

    /**
     * One attempt of a delivery (a queue job). A failed attempt throws, so that the queue tries again later with a
     * longer delay; the last one marks the delivery failed instead.
     */
    async attempt(job: DeliveryJob): Promise<void> {
      const delivery = await webhooks.delivery(job.deliveryId);
      if (!delivery || delivery.status === "delivered") return;
      const webhook = await webhooks.get(undefined, delivery.webhookId);
      if (!webhook) return;
      const now = new Date();
      const headers = signatureHeaders(signingSecrets(webhook, now), delivery.id, now, delivery.payload);
      const result = await sendWebhook({
        url: webhook.url,
        headers: { ...headers, "user-agent": "ai-request-handler-webhooks" },
        body: delivery.payload,
        timeoutMs: deps.timeoutMs,
        maxResponseBytes,
        allowPrivateNetworks: deps.allowPrivateNetworks,
      });
      const last = job.retryCount >= job.retryLimit;
      const outcome = result.ok ? "delivered" : last ? "failed" : "pending";
      await webhooks.recordAttempt(
        delivery.id,
        {
          attemptedAt: now,
          statusCode: result.status,
          error: result.error,
          durationMs: result.durationMs,
          responseBody: result.responseBody,
        },
        outcome,
      );
      metrics.webhookDeliveries.inc({ result: result.ok ? "delivered" : last ? "failed" : "retrying" });
      logger.info(
        {
          deliveryId: delivery.id,
          webhookId: webhook.id,
          requestRecordId: delivery.requestId,
          attempt: job.retryCount + 1,
          outcome,
          status: result.status,
          error: result.error,
          durationMs: result.durationMs,
        },
        "webhook delivery attempt",
      );
      if (outcome === "pending")
        throw new Error(`webhook delivery ${delivery.id} failed: ${result.error ?? result.status}`);
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
