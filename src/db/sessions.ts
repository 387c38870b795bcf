import { and, eq, getTableColumns, gt, lte } from "drizzle-orm";
import type { Db } from "./client.ts";
import { toApiKeyRecord } from "./api-keys.ts";
import { apiKeys, sessions, users } from "./schema.ts";
import type { ApiKeyRecord, UserRecord } from "./types.ts";
import { toUserRecord } from "./users.ts";

export interface NewSession {
  id: string;
  /** SHA-256 of the cookie's token, hex: the token itself is never stored. */
  tokenHash: string;
  /** Null for the operator's ADMIN_API_KEY, which has no user. */
  userId: string | null;
  apiKeyId: string | null;
  expiresAt: Date;
}

export interface SessionRecord extends NewSession {
  createdAt: Date;
}

/** A live session and who it speaks for: `owner` null is the operator. */
export interface LiveSession {
  session: SessionRecord;
  owner: { user: UserRecord; key: ApiKeyRecord } | null;
}

export interface SessionRepository {
  create(input: NewSession): Promise<SessionRecord>;
  /**
   * The session with this token hash, in one query with its key and user, only while it lives: not expired, and
   * (for a user's session) its key neither revoked nor expired and its user not disabled. Asked on every call made
   * with the cookie, so a revocation or a disable ends the session at once, on every instance.
   */
  findLive(tokenHash: string, now?: Date): Promise<LiveSession | undefined>;
  /** Ends a session (sign-out). True when there was one. */
  delete(tokenHash: string): Promise<boolean>;
  /** Removes sessions past their expiry; returns how many. */
  deleteExpired(now?: Date): Promise<number>;
}

export function createSessionRepository(db: Db): SessionRepository {
  return {
    async create(input) {
      const [row] = await db.insert(sessions).values(input).returning();
      if (row === undefined) throw new Error("insert into sessions returned no row");
      return row;
    },

    async findLive(tokenHash, now = new Date()) {
      const [row] = await db
        .select({ session: getTableColumns(sessions), key: getTableColumns(apiKeys), user: getTableColumns(users) })
        .from(sessions)
        .leftJoin(apiKeys, eq(apiKeys.id, sessions.apiKeyId))
        .leftJoin(users, eq(users.id, sessions.userId))
        .where(and(eq(sessions.tokenHash, tokenHash), gt(sessions.expiresAt, now)));
      if (!row) return undefined;
      if (row.session.userId === null) return { session: row.session, owner: null };
      if (!row.user || !row.key) return undefined;
      const key = toApiKeyRecord(row.key);
      const user = toUserRecord(row.user);
      if (user.disabled || key.revokedAt || (key.expiresAt && key.expiresAt <= now)) return undefined;
      return { session: row.session, owner: { user, key } };
    },

    async delete(tokenHash) {
      const rows = await db.delete(sessions).where(eq(sessions.tokenHash, tokenHash)).returning({ id: sessions.id });
      return rows.length > 0;
    },

    async deleteExpired(now = new Date()) {
      const rows = await db.delete(sessions).where(lte(sessions.expiresAt, now)).returning({ id: sessions.id });
      return rows.length;
    },
  };
}
