import { and, desc, eq, getTableColumns, gt, isNull, or, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { apiKeys, users } from "./schema.ts";
import type { ApiKeyRecord, UserRecord } from "./types.ts";
import { toUserRecord } from "./users.ts";

export interface NewApiKey {
  id: string;
  userId: string;
  name: string | null;
  prefix: string;
  /** SHA-256 of the full key, hex. The key itself is never stored. */
  hash: string;
  expiresAt: Date | null;
  /** This key's own limits on top of its user's. Default null: only the user's apply. */
  rpm?: number | null;
  tpm?: number | null;
}

export interface ActiveApiKey {
  key: ApiKeyRecord;
  user: UserRecord;
}

export interface ApiKeyRepository {
  /** Throws if `userId` does not exist (foreign key): check the user first. */
  create(input: NewApiKey): Promise<ApiKeyRecord>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /**
   * The key with this hash and its user, in one query, only if the key is usable at `now`: not revoked and not
   * expired (`expiresAt > now`). A disabled user is still returned (`user.disabled`): the caller decides.
   */
  findActiveByHash(hash: string, now?: Date): Promise<ActiveApiKey | undefined>;
  /** Every key of the user, revoked and expired included, newest first. */
  listByUser(userId: string): Promise<ApiKeyRecord[]>;
  /** Replaces the key's own limits (null: none). Undefined when no such key. */
  setLimits(id: string, limits: { rpm: number | null; tpm: number | null }): Promise<ApiKeyRecord | undefined>;
  /** Sets `revokedAt` once; revoking again keeps the first time. Undefined when no such key. */
  revoke(id: string): Promise<ApiKeyRecord | undefined>;
}

export function createApiKeyRepository(db: Db): ApiKeyRepository {
  return {
    async create(input) {
      const [row] = await db
        .insert(apiKeys)
        .values({
          id: input.id,
          userId: input.userId,
          name: input.name,
          prefix: input.prefix,
          hash: input.hash,
          expiresAt: input.expiresAt,
          rpm: input.rpm ?? null,
          tpm: input.tpm ?? null,
        })
        .returning();
      if (row === undefined) throw new Error("insert into api_keys returned no row");
      return toApiKeyRecord(row);
    },

    async get(id) {
      const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, id));
      return row && toApiKeyRecord(row);
    },

    async findActiveByHash(hash, now = new Date()) {
      const [row] = await db
        .select({ key: getTableColumns(apiKeys), user: getTableColumns(users) })
        .from(apiKeys)
        .innerJoin(users, eq(users.id, apiKeys.userId))
        .where(
          and(
            eq(apiKeys.hash, hash),
            isNull(apiKeys.revokedAt),
            or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now)),
          ),
        );
      return row && { key: toApiKeyRecord(row.key), user: toUserRecord(row.user) };
    },

    async listByUser(userId) {
      const rows = await db
        .select()
        .from(apiKeys)
        .where(eq(apiKeys.userId, userId))
        .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
      return rows.map(toApiKeyRecord);
    },

    async setLimits(id, limits) {
      const [row] = await db
        .update(apiKeys)
        .set({ rpm: limits.rpm, tpm: limits.tpm })
        .where(eq(apiKeys.id, id))
        .returning();
      return row && toApiKeyRecord(row);
    },

    async revoke(id) {
      const [row] = await db
        .update(apiKeys)
        .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
        .where(eq(apiKeys.id, id))
        .returning();
      return row && toApiKeyRecord(row);
    },
  };
}

export function toApiKeyRecord(row: typeof apiKeys.$inferSelect): ApiKeyRecord {
  return {
    id: row.id,
    userId: row.userId,
    name: row.name,
    prefix: row.prefix,
    hash: row.hash,
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    revokedAt: row.revokedAt,
    rpm: row.rpm,
    tpm: row.tpm,
  };
}
