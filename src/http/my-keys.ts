import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ApiKeyRepository } from "../db/api-keys.ts";
import type { ApiKeyRecord } from "../db/types.ts";
import { AppError } from "../errors.ts";
import type { KeyRevocation } from "../keys/revocation.ts";
import { problemSchema, storableString } from "../requests/schemas.ts";
import {
  apiKeySchema,
  checkedId,
  createdKeySchema,
  createKeySchema,
  formatApiKey,
  issueKeyFor,
  keyLimitsSchema,
} from "./admin.ts";
import { callerOf } from "./auth.ts";

export interface MyKeysRoutesDeps {
  apiKeys: ApiKeyRepository;
  revocation: KeyRevocation;
}

/**
 * A user's own keys (`/me/keys`): list, create (the key shown once), set a key's limits, revoke. A key's limits only
 * narrow its user's (a request must fit both), so a user may set them. Another user's key is a 404, as if it did not
 * exist.
 */
export function registerMyKeysRoutes(app: FastifyInstance, deps: MyKeysRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const tags = ["me"];
  const config = { access: "user" as const };
  const params = z.object({ id: storableString() });
  const errors = { 400: problemSchema, 401: problemSchema, 404: problemSchema };

  async function ownKey(userId: string, id: string): Promise<ApiKeyRecord> {
    const key = await deps.apiKeys.get(checkedId("key", id));
    if (!key || key.userId !== userId) throw new AppError("not_found", `no key ${id}`);
    return key;
  }

  routes.get("/me/keys", {
    config,
    schema: {
      summary: "Your keys, newest first (never the keys themselves)",
      tags,
      response: { 200: z.object({ data: z.array(apiKeySchema) }), ...errors },
    },
    handler: async (request) => {
      const { user } = callerOf(request);
      return { data: (await deps.apiKeys.listByUser(user.id)).map(formatApiKey) };
    },
  });

  routes.post("/me/keys", {
    config,
    schema: {
      summary: "Create a key for yourself (the key is shown only in this answer)",
      tags,
      body: createKeySchema.default({}),
      response: { 201: createdKeySchema, ...errors, 422: problemSchema },
    },
    handler: async (request, reply) => {
      const { user } = callerOf(request);
      const created = await issueKeyFor(deps.apiKeys, user.id, request.body);
      return reply.code(201).header("cache-control", "no-store").send(created);
    },
  });

  routes.patch("/me/keys/:id", {
    config,
    schema: {
      summary: "Set one of your keys' limits (null: none of its own)",
      tags,
      params,
      body: z.strictObject({ limits: keyLimitsSchema }),
      response: { 200: apiKeySchema, ...errors, 422: problemSchema },
    },
    handler: async (request) => {
      const { user } = callerOf(request);
      const key = await ownKey(user.id, request.params.id);
      const { rpm = key.rpm, tpm = key.tpm } = request.body.limits;
      const updated = await deps.apiKeys.setLimits(key.id, { rpm: rpm ?? null, tpm: tpm ?? null });
      if (!updated) throw new AppError("not_found", `no key ${key.id}`);
      // Every instance forgets the key's cached limits at once.
      await deps.revocation.invalidateKey(key.id);
      return formatApiKey(updated);
    },
  });

  routes.delete("/me/keys/:id", {
    config,
    schema: {
      summary: "Revoke one of your keys at once (sessions opened with it end too)",
      tags,
      params,
      response: { 200: apiKeySchema, ...errors },
    },
    handler: async (request) => {
      const { user } = callerOf(request);
      const key = await ownKey(user.id, request.params.id);
      const revoked = await deps.apiKeys.revoke(key.id);
      if (!revoked) throw new AppError("not_found", `no key ${key.id}`);
      await deps.revocation.invalidateKey(key.id);
      return formatApiKey(revoked);
    },
  });
}
