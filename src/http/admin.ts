import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { ApiKeyRepository } from "../db/api-keys.ts";
import type { ApiKeyRecord, UserRecord } from "../db/types.ts";
import type { UserRepository } from "../db/users.ts";
import { isId } from "../ids.ts";
import { issueApiKey } from "../keys/issue-key.ts";
import type { KeyRevocation } from "../keys/revocation.ts";
import { problemSchema, storableString } from "../requests/schemas.ts";

export interface AdminRoutesDeps {
  users: UserRepository;
  apiKeys: ApiKeyRepository;
  /** Revocations, disables and limit changes reach every instance's key cache at once. */
  revocation: KeyRevocation;
}

/** Limits are stored as PostgreSQL integers: a larger number is refused here rather than failing the insert. */
const perMinute = z.number().int().min(1).max(2_147_483_647).nullable().optional();

const limitsSchema = z.strictObject({
  rpm: perMinute.describe("Requests per minute; null: unlimited"),
  tpm: perMinute.describe("Tokens per minute; null: unlimited"),
  monthly_budget_usd: z
    .number()
    .min(0)
    .nullable()
    .optional()
    .describe("US dollars per calendar month; null: unlimited"),
});

const createUserSchema = z.strictObject({
  email: z.email().max(254),
  name: storableString().min(1).max(200).optional(),
  role: z.enum(["user", "admin"]).default("user"),
  limits: limitsSchema.default({}),
});

const updateUserSchema = z.strictObject({
  name: storableString().min(1).max(200).nullable().optional(),
  disabled: z.boolean().optional(),
  limits: limitsSchema.optional(),
});

export const keyLimitsSchema = z.strictObject({
  rpm: perMinute.describe("Requests per minute of this key; null: the user's only"),
  tpm: perMinute.describe("Tokens per minute of this key; null: the user's only"),
});

export const createKeySchema = z.strictObject({
  name: storableString().min(1).max(200).optional(),
  limits: keyLimitsSchema
    .optional()
    .describe("Limits of this key on top of its user's: a request must fit both. Default: the user's only"),
  expires_at: z.iso
    .datetime({ offset: true })
    .optional()
    .describe("ISO 8601; must be in the future")
    .refine((value) => value === undefined || Date.parse(value) > Date.now(), { message: "must be in the future" }),
});

export const userSchema = z
  .object({
    id: z.string(),
    object: z.literal("user"),
    email: z.string(),
    name: z.string().nullable(),
    role: z.enum(["user", "admin"]),
    disabled: z.boolean(),
    limits: z.object({
      rpm: z.number().nullable(),
      tpm: z.number().nullable(),
      monthly_budget_usd: z.number().nullable(),
    }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: "User" });

export const apiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal("api_key"),
    user_id: z.string(),
    prefix: z.string(),
    name: z.string().nullable(),
    limits: z.object({ rpm: z.number().nullable(), tpm: z.number().nullable() }),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .meta({ id: "ApiKey" });

export const createdKeySchema = apiKeySchema.extend({
  key: z.string().describe("The full key. Shown only in this answer."),
});

export function formatUser(user: UserRecord) {
  return {
    id: user.id,
    object: "user" as const,
    email: user.email,
    name: user.name,
    role: user.role,
    disabled: user.disabled,
    limits: { rpm: user.rpm, tpm: user.tpm, monthly_budget_usd: user.monthlyBudgetUsd },
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

export function formatApiKey(key: ApiKeyRecord) {
  return {
    id: key.id,
    object: "api_key" as const,
    user_id: key.userId,
    prefix: key.prefix,
    name: key.name,
    limits: { rpm: key.rpm, tpm: key.tpm },
    created_at: key.createdAt.toISOString(),
    expires_at: key.expiresAt?.toISOString() ?? null,
    revoked_at: key.revokedAt?.toISOString() ?? null,
  };
}

/** A new key for a user from a create-key body: the answer that shows the key, once. */
export async function issueKeyFor(apiKeys: ApiKeyRepository, userId: string, body: z.output<typeof createKeySchema>) {
  const { name, expires_at, limits } = body;
  const issued = await issueApiKey(apiKeys, {
    userId,
    name: name ?? null,
    expiresAt: expires_at ? new Date(expires_at) : null,
    rpm: limits?.rpm ?? null,
    tpm: limits?.tpm ?? null,
  });
  return { ...formatApiKey(issued.record), key: issued.key };
}

export function checkedId(prefix: "usr" | "key", id: string): string {
  if (!isId(prefix, id)) {
    const message = `must be a ${prefix === "usr" ? "user" : "key"} id (${prefix}_…)`;
    throw new AppError("invalid_request", `id: ${message}`, { errors: [{ path: "id", message }] });
  }
  return id;
}

const limitPatch = (limits: z.infer<typeof limitsSchema> | undefined) => ({
  ...(limits?.rpm !== undefined && { rpm: limits.rpm }),
  ...(limits?.tpm !== undefined && { tpm: limits.tpm }),
  ...(limits?.monthly_budget_usd !== undefined && { monthlyBudgetUsd: limits.monthly_budget_usd }),
});

export function registerAdminRoutes(app: FastifyInstance, deps: AdminRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const config = { access: "admin" as const };
  const tags = ["admin"];
  const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };

  async function existingUser(id: string): Promise<UserRecord> {
    const user = await deps.users.get(checkedId("usr", id));
    if (!user) throw new AppError("not_found", `no user ${id}`);
    return user;
  }

  routes.post("/admin/users", {
    config,
    schema: {
      summary: "Create a user",
      tags,
      body: createUserSchema,
      response: { 201: userSchema, ...errors, 409: problemSchema, 422: problemSchema },
    },
    handler: async (request, reply) => {
      const { email, name, role, limits } = request.body;
      const created = await deps.users.create({ email, name: name ?? null, role, ...limitPatch(limits) });
      if (!created.ok) {
        throw new AppError("conflict", `email: a user with ${email} exists already`, {
          errors: [{ path: "email", message: "is taken" }],
        });
      }
      return reply.code(201).send(formatUser(created.user));
    },
  });

  routes.get("/admin/users", {
    config,
    schema: {
      summary: "List users, oldest first",
      tags,
      querystring: z.strictObject({
        limit: z.coerce.number().int().min(1).max(100).default(20),
        cursor: z.string().min(1).max(512).optional(),
      }),
      response: { 200: z.object({ data: z.array(userSchema), next_cursor: z.string().nullable() }), ...errors },
    },
    handler: async (request) => {
      const page = await deps.users.list(request.query);
      return { data: page.data.map(formatUser), next_cursor: page.nextCursor };
    },
  });

  routes.get("/admin/users/:id", {
    config,
    schema: {
      summary: "A user",
      tags,
      params: z.object({ id: storableString() }),
      response: { 200: userSchema, ...errors },
    },
    handler: async (request) => formatUser(await existingUser(request.params.id)),
  });

  routes.patch("/admin/users/:id", {
    config,
    schema: {
      summary: "Change a user's name, limits or disabled flag",
      tags,
      params: z.object({ id: storableString() }),
      body: updateUserSchema,
      response: { 200: userSchema, ...errors, 422: problemSchema },
    },
    handler: async (request) => {
      const id = checkedId("usr", request.params.id);
      const { name, disabled, limits } = request.body;
      const updated = await deps.users.update(id, {
        ...(name !== undefined && { name }),
        ...(disabled !== undefined && { disabled }),
        ...limitPatch(limits),
      });
      if (!updated) throw new AppError("not_found", `no user ${id}`);
      await deps.revocation.invalidateUser(id);
      return formatUser(updated);
    },
  });

  routes.post("/admin/users/:id/keys", {
    config,
    schema: {
      summary: "Create an API key for a user (the key is shown only in this answer)",
      tags,
      params: z.object({ id: storableString() }),
      body: createKeySchema.default({}),
      response: { 201: createdKeySchema, ...errors, 422: problemSchema },
    },
    handler: async (request, reply) => {
      const user = await existingUser(request.params.id);
      const created = await issueKeyFor(deps.apiKeys, user.id, request.body);
      return reply.code(201).header("cache-control", "no-store").send(created);
    },
  });

  routes.get("/admin/users/:id/keys", {
    config,
    schema: {
      summary: "A user's keys (never the keys themselves)",
      tags,
      params: z.object({ id: storableString() }),
      response: { 200: z.object({ data: z.array(apiKeySchema) }), ...errors },
    },
    handler: async (request) => {
      const user = await existingUser(request.params.id);
      return { data: (await deps.apiKeys.listByUser(user.id)).map(formatApiKey) };
    },
  });

  routes.delete("/admin/keys/:id", {
    config,
    schema: {
      summary: "Revoke a key at once",
      tags,
      params: z.object({ id: storableString() }),
      response: { 200: apiKeySchema, ...errors },
    },
    handler: async (request) => {
      const id = checkedId("key", request.params.id);
      const revoked = await deps.apiKeys.revoke(id);
      if (!revoked) throw new AppError("not_found", `no key ${id}`);
      await deps.revocation.invalidateKey(id);
      return formatApiKey(revoked);
    },
  });
}
