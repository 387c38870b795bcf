import { sql } from "drizzle-orm";
import {
  bigserial,
  boolean,
  check,
  customType,
  doublePrecision,
  index,
  integer,
  pgTable,
  real,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { fromStoredJson, toStorableJson } from "./storable-json.ts";
import type { AttemptRecord, RequestSource, RequestStatus, RequestType, Role, StoredError } from "./types.ts";

/**
 * jsonb that returns what the driver parsed. drizzle's own `jsonb()` runs JSON.parse again on any string it reads
 * back, so a stored JSON string such as the text input "123" or "true" would come back as a number or a boolean.
 * Both pg and PGlite already parse jsonb, so reading only undoes the escape of what PostgreSQL cannot hold
 * (storable-json.ts); writing serialises once.
 */
const jsonb = customType<{ data: unknown; driverData: unknown }>({
  dataType: () => "jsonb",
  toDriver: (value) => toStorableJson(value),
  fromDriver: (value) => fromStoredJson(value),
});

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

export const users = pgTable(
  "users",
  {
    id: text("id").primaryKey(),
    /** Stored lowercased by the repository, so the unique constraint is case-insensitive in effect. */
    email: text("email").notNull().unique("users_email_unique"),
    name: text("name"),
    role: text("role").$type<Role>().notNull().default("user"),
    disabled: boolean("disabled").notNull().default(false),
    rpm: integer("rpm"),
    tpm: integer("tpm"),
    monthlyBudgetUsd: doublePrecision("monthly_budget_usd"),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [check("users_role_check", sql`${t.role} in ('user', 'admin')`)],
);

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name"),
    prefix: text("prefix").notNull(),
    /** SHA-256 of the full key, hex: the lookup on every authenticated call. */
    hash: text("hash").notNull().unique("api_keys_hash_unique"),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    /** Optional limits of this key on top of its user's (both apply); null: only the user's. */
    rpm: integer("rpm"),
    tpm: integer("tpm"),
  },
  (t) => [index("api_keys_user_id_idx").on(t.userId)],
);

/**
 * Dashboard sign-ins: an API key exchanged for a session whose token lives only in an httpOnly cookie. The row
 * keeps the token's SHA-256, never the token, and the key it was opened with, so revoking that key (or disabling
 * its user) ends the session on the next call. The operator's ADMIN_API_KEY opens a session with neither.
 */
export const sessions = pgTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull().unique("sessions_token_hash_unique"),
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    apiKeyId: text("api_key_id").references(() => apiKeys.id, { onDelete: "cascade" }),
    createdAt: createdAt(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("sessions_expires_at_idx").on(t.expiresAt)],
);

export const requests = pgTable(
  "requests",
  {
    id: text("id").primaryKey(),
    // Accounting records keep their user: a user with requests cannot be deleted (no action, the default).
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    // No foreign key: a key may be deleted later, and the record must still be insertable in a batch.
    apiKeyId: text("api_key_id"),
    type: text("type").$type<RequestType>().notNull(),
    source: text("source").$type<RequestSource>().notNull().default("native"),
    model: text("model").notNull(),
    provider: text("provider").notNull(),
    status: text("status").$type<RequestStatus>().notNull(),
    input: jsonb("input"),
    options: jsonb("options").$type<Record<string, unknown> | null>(),
    output: jsonb("output"),
    error: jsonb("error").$type<StoredError | null>(),
    promptTokens: integer("prompt_tokens").notNull().default(0),
    completionTokens: integer("completion_tokens").notNull().default(0),
    totalTokens: integer("total_tokens").notNull().default(0),
    costUsd: doublePrecision("cost_usd"),
    cached: boolean("cached").notNull().default(false),
    latencyMs: integer("latency_ms").notNull().default(0),
    upstreamMs: integer("upstream_ms"),
    // Fractions of a millisecond: the entry is one Redis round trip, usually well under 1 ms.
    entryMs: real("entry_ms"),
    retries: integer("retries").notNull().default(0),
    attempts: jsonb("attempts").$type<AttemptRecord[] | null>(),
    metadata: jsonb("metadata").$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
    completedAt: timestamp("completed_at", { withTimezone: true, mode: "date" }),
    deletedAt: timestamp("deleted_at", { withTimezone: true, mode: "date" }),
    // Queued requests only: the batch it came in (POST /requests/batch), and the queue job running it now, so that
    // a job taken up again after its worker died resumes it and no other job runs it at the same time.
    batchId: text("batch_id"),
    runToken: text("run_token"),
  },
  (t) => [
    check("requests_type_check", sql`${t.type} in ('chat', 'summarize', 'translate', 'classify', 'extract', 'embed')`),
    check("requests_status_check", sql`${t.status} in ('queued', 'running', 'completed', 'failed', 'cancelled')`),
    check("requests_source_check", sql`${t.source} in ('native', 'openai', 'anthropic')`),
    // Newest-first list per user (keyset on created_at, id) and the per-day usage sums over a date range.
    // NULLS FIRST is PostgreSQL's default for DESC, so a plain `order by created_at desc, id desc` matches the index
    // (the planner does not use NOT NULL to reconcile a NULLS LAST index with it).
    index("requests_user_created_idx").on(t.userId, t.createdAt.desc().nullsFirst(), t.id.desc().nullsFirst()),
    // The list filtered by type or by status keeps the same order without a sort.
    index("requests_user_type_created_idx").on(
      t.userId,
      t.type,
      t.createdAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    index("requests_user_status_created_idx").on(
      t.userId,
      t.status,
      t.createdAt.desc().nullsFirst(),
      t.id.desc().nullsFirst(),
    ),
    // A batch's requests (its counts, its page of GET /requests?batch_id=); only queued requests have a batch.
    index("requests_batch_idx").on(t.batchId, t.id.desc()).where(sql`${t.batchId} is not null`),
    // A user's unfinished queued requests: how far back their next one goes in the queue (fair ordering).
    index("requests_user_unfinished_idx").on(t.userId).where(sql`${t.status} in ('queued', 'running')`),
  ],
);

/** POST /requests/batch: up to 1,000 queued requests, counted by status from the requests themselves. */
export const batches = pgTable("batches", {
  id: text("id").primaryKey(),
  userId: text("user_id")
    .notNull()
    .references(() => users.id),
  apiKeyId: text("api_key_id"),
  size: integer("size").notNull(),
  metadata: jsonb("metadata").$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
  createdAt: createdAt(),
  cancelledAt: timestamp("cancelled_at", { withTimezone: true, mode: "date" }),
});

// The usage rollups (summed per hour and per day as requests are stored) have a module of their own.
export * from "./usage-rollup-tables.ts";

/**
 * A user's webhook: where the events of their queued requests are posted, signed (Standard Webhooks) with a secret
 * stored sealed (src/webhooks/signing.ts), never in the clear. During a rotation the previous secret signs too.
 */
export const webhooks = pgTable(
  "webhooks",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    events: text("events").array().notNull(),
    secretSealed: text("secret_sealed").notNull(),
    previousSecretSealed: text("previous_secret_sealed"),
    previousSecretExpiresAt: timestamp("previous_secret_expires_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
  },
  (t) => [index("webhooks_user_idx").on(t.userId)],
);

/**
 * The outbox: one row per event and webhook, written before anything is sent, so a delivery is never lost when the
 * service dies between finishing a request and posting it. Its id is the message id the receiver sees
 * (`webhook-id`), the same on every attempt; `payload` is the exact JSON posted each time.
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    webhookId: text("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    requestId: text("request_id").notNull(),
    event: text("event").notNull(),
    payload: text("payload").notNull(),
    status: text("status").$type<"pending" | "delivered" | "failed">().notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    createdAt: createdAt(),
    lastAttemptAt: timestamp("last_attempt_at", { withTimezone: true, mode: "date" }),
    deliveredAt: timestamp("delivered_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    uniqueIndex("webhook_deliveries_event_idx").on(t.webhookId, t.requestId, t.event),
    index("webhook_deliveries_webhook_idx").on(t.webhookId, t.id.desc()),
  ],
);

/** Each attempt of a delivery, as the receiver answered it. */
export const webhookAttempts = pgTable(
  "webhook_attempts",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    deliveryId: text("delivery_id")
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: "cascade" }),
    attemptedAt: timestamp("attempted_at", { withTimezone: true, mode: "date" }).notNull(),
    statusCode: integer("status_code"),
    error: text("error"),
    durationMs: integer("duration_ms").notNull(),
    responseBody: text("response_body").notNull(),
  },
  (t) => [index("webhook_attempts_delivery_idx").on(t.deliveryId, t.id)],
);

/**
 * Keys the service makes for itself when none is configured, shared by every instance: `webhook_secret_key` seals
 * webhook signing secrets when WEBHOOK_SECRET_KEY is unset.
 */
export const serviceKeys = pgTable("service_keys", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
  createdAt: createdAt(),
});

export const schema = { users, apiKeys, requests, batches, webhooks, webhookDeliveries, webhookAttempts, serviceKeys };
export type Schema = typeof schema;
