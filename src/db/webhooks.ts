import type { StatementRunner } from "./client.ts";

/** A user's webhook as stored: its secrets sealed (src/webhooks/signing.ts opens them). */
export interface WebhookRecord {
  id: string;
  userId: string;
  url: string;
  events: string[];
  secretSealed: string;
  previousSecretSealed: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
}

export interface DeliveryRecord {
  id: string;
  webhookId: string;
  requestId: string;
  event: string;
  payload: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  createdAt: Date;
  lastAttemptAt: Date | null;
  deliveredAt: Date | null;
}

export interface AttemptRecord {
  attemptedAt: Date;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  responseBody: string;
}

export interface NewDelivery {
  id: string;
  webhookId: string;
  requestId: string;
  event: string;
  payload: string;
}

type Row = Record<string, unknown>;
const date = (value: unknown) => new Date(value as string | Date);
const maybeDate = (value: unknown) => (value === null || value === undefined ? null : date(value));

function webhookOf(row: Row): WebhookRecord {
  return {
    id: String(row.id),
    userId: String(row.user_id),
    url: String(row.url),
    events: row.events as string[],
    secretSealed: String(row.secret_sealed),
    previousSecretSealed: (row.previous_secret_sealed as string | null) ?? null,
    previousSecretExpiresAt: maybeDate(row.previous_secret_expires_at),
    createdAt: date(row.created_at),
  };
}

function deliveryOf(row: Row): DeliveryRecord {
  return {
    id: String(row.id),
    webhookId: String(row.webhook_id),
    requestId: String(row.request_id),
    event: String(row.event),
    payload: String(row.payload),
    status: row.status as DeliveryRecord["status"],
    attempts: Number(row.attempts),
    createdAt: date(row.created_at),
    lastAttemptAt: maybeDate(row.last_attempt_at),
    deliveredAt: maybeDate(row.delivered_at),
  };
}

export interface WebhookRepository {
  create(webhook: Omit<WebhookRecord, "previousSecretSealed" | "previousSecretExpiresAt">): Promise<WebhookRecord>;
  list(userId: string): Promise<WebhookRecord[]>;
  /** The user's webhook; any user's when `userId` is undefined (the delivery worker). */
  get(userId: string | undefined, id: string): Promise<WebhookRecord | undefined>;
  delete(userId: string, id: string): Promise<boolean>;
  /** A new current secret; the current one becomes the previous, valid until `previousExpiresAt`. */
  rotate(userId: string, id: string, secretSealed: string, previousExpiresAt: Date): Promise<WebhookRecord | undefined>;
  /** The user's webhooks that subscribe to `event`. */
  subscribed(userId: string, event: string): Promise<WebhookRecord[]>;
  /** Writes the deliveries not written yet (one per webhook, request and event), in the caller's transaction. */
  addDeliveries(runner: StatementRunner, deliveries: readonly NewDelivery[]): Promise<string[]>;
  delivery(id: string): Promise<DeliveryRecord | undefined>;
  /** A webhook's deliveries, newest first, each with its attempts (oldest first). */
  deliveries(webhookId: string, limit: number): Promise<Array<DeliveryRecord & { attemptList: AttemptRecord[] }>>;
  /** Stores an attempt and its outcome on the delivery: delivered, failed for good, or still pending. */
  recordAttempt(deliveryId: string, attempt: AttemptRecord, outcome: DeliveryRecord["status"]): Promise<void>;
  /** Sets a delivery pending again (a redelivery asked by its user), in the caller's transaction. */
  reopen(runner: StatementRunner, deliveryId: string): Promise<void>;
  /** A named key of the service's own, made by `make` the first time and the same for every instance after. */
  serviceKey(name: string, make: () => string): Promise<string>;
}

export function createWebhookRepository(runner: StatementRunner): WebhookRepository {
  const query = async (text: string, values: unknown[] = []) => (await runner.query({ text, values })).rows as Row[];

  return {
    async create(webhook) {
      const [row] = await query(
        `insert into webhooks (id, user_id, url, events, secret_sealed, created_at)
          values ($1, $2, $3, $4, $5, $6) returning *`,
        [
          webhook.id,
          webhook.userId,
          webhook.url,
          webhook.events,
          webhook.secretSealed,
          webhook.createdAt.toISOString(),
        ],
      );
      return webhookOf(row as Row);
    },

    async list(userId) {
      return (await query("select * from webhooks where user_id = $1 order by created_at, id", [userId])).map(
        webhookOf,
      );
    },

    async get(userId, id) {
      const [row] = await query("select * from webhooks where id = $1 and ($2::text is null or user_id = $2)", [
        id,
        userId ?? null,
      ]);
      return row && webhookOf(row);
    },

    async delete(userId, id) {
      return (await query("delete from webhooks where id = $1 and user_id = $2 returning id", [id, userId])).length > 0;
    },

    async rotate(userId, id, secretSealed, previousExpiresAt) {
      const [row] = await query(
        `update webhooks set previous_secret_sealed = secret_sealed, previous_secret_expires_at = $4,
          secret_sealed = $3 where id = $1 and user_id = $2 returning *`,
        [id, userId, secretSealed, previousExpiresAt.toISOString()],
      );
      return row && webhookOf(row);
    },

    async subscribed(userId, event) {
      return (await query("select * from webhooks where user_id = $1 and $2 = any(events)", [userId, event])).map(
        webhookOf,
      );
    },

    async addDeliveries(transaction, deliveries) {
      if (deliveries.length === 0) return [];
      const values: unknown[] = [];
      const tuples = deliveries.map((delivery) => {
        const first = values.length;
        values.push(delivery.id, delivery.webhookId, delivery.requestId, delivery.event, delivery.payload);
        return `($${first + 1}, $${first + 2}, $${first + 3}, $${first + 4}, $${first + 5})`;
      });
      const { rows } = await transaction.query({
        text: `insert into webhook_deliveries (id, webhook_id, request_id, event, payload) values ${tuples.join(", ")}
          on conflict (webhook_id, request_id, event) do nothing returning id`,
        values,
      });
      return (rows as Row[]).map((row) => String(row.id));
    },

    async delivery(id) {
      const [row] = await query("select * from webhook_deliveries where id = $1", [id]);
      return row && deliveryOf(row);
    },

    async deliveries(webhookId, limit) {
      const rows = (
        await query("select * from webhook_deliveries where webhook_id = $1 order by id desc limit $2", [
          webhookId,
          limit,
        ])
      ).map(deliveryOf);
      if (rows.length === 0) return [];
      const attempts = await query(
        `select delivery_id, attempted_at, status_code, error, duration_ms, response_body from webhook_attempts
          where delivery_id = any($1) order by id`,
        [rows.map((row) => row.id)],
      );
      return rows.map((delivery) => ({
        ...delivery,
        attemptList: attempts
          .filter((attempt) => attempt.delivery_id === delivery.id)
          .map((attempt) => ({
            attemptedAt: date(attempt.attempted_at),
            statusCode: attempt.status_code === null ? null : Number(attempt.status_code),
            error: (attempt.error as string | null) ?? null,
            durationMs: Number(attempt.duration_ms),
            responseBody: String(attempt.response_body),
          })),
      }));
    },

    async recordAttempt(deliveryId, attempt, outcome) {
      await query(
        `with attempt as (
            insert into webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms, response_body)
            values ($1, $2, $3, $4, $5, $6)
          )
          update webhook_deliveries set attempts = attempts + 1, last_attempt_at = $2, status = $7,
            delivered_at = case when $7 = 'delivered' then $2::timestamptz else delivered_at end
          where id = $1`,
        [
          deliveryId,
          attempt.attemptedAt.toISOString(),
          attempt.statusCode,
          attempt.error,
          attempt.durationMs,
          attempt.responseBody,
          outcome,
        ],
      );
    },

    async reopen(transaction, deliveryId) {
      await transaction.query({
        text: "update webhook_deliveries set status = 'pending' where id = $1",
        values: [deliveryId],
      });
    },

    async serviceKey(name, make) {
      await query("insert into service_keys (name, value) values ($1, $2) on conflict (name) do nothing", [
        name,
        make(),
      ]);
      const [row] = await query("select value from service_keys where name = $1", [name]);
      return String(row?.value);
    },
  };
}
