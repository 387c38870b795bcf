import { asc, count, eq, gt, sql } from "drizzle-orm";
import { newId } from "../ids.ts";
import type { Db } from "./client.ts";
import { clampPageLimit, cursorIdPattern, decodeCursor, encodeCursor } from "./cursor.ts";
import { users } from "./schema.ts";
import type { Role, UserRecord } from "./types.ts";

export interface NewUser {
  /** Default: a fresh `usr_…` id. */
  id?: string;
  /** Stored trimmed and lowercased. */
  email: string;
  name?: string | null;
  /** Default `user`. */
  role?: Role;
  /** Default false. */
  disabled?: boolean;
  rpm?: number | null;
  tpm?: number | null;
  monthlyBudgetUsd?: number | null;
}

/** A missing key leaves the field alone; `null` clears a nullable one. */
export interface UserPatch {
  name?: string | null;
  role?: Role;
  disabled?: boolean;
  rpm?: number | null;
  tpm?: number | null;
  monthlyBudgetUsd?: number | null;
}

/** A duplicate email is an expected answer, not an exception. */
export type CreateUserResult = { ok: true; user: UserRecord } | { ok: false; reason: "email_taken" };

export interface UserListQuery {
  /** Clamped to 1..100. */
  limit: number;
  /** From a previous page's `nextCursor`; a foreign value throws `InvalidCursorError`. */
  cursor?: string;
}

export interface UserPage {
  data: UserRecord[];
  nextCursor: string | null;
}

export interface UserRepository {
  create(input: NewUser): Promise<CreateUserResult>;
  get(id: string): Promise<UserRecord | undefined>;
  /** Case-insensitive: the email is lowercased like on create. */
  getByEmail(email: string): Promise<UserRecord | undefined>;
  /** Oldest first (ids are time-ordered), keyset-paginated by id. */
  list(query: UserListQuery): Promise<UserPage>;
  /** Undefined when no such user. Bumps `updatedAt`. */
  update(id: string, patch: UserPatch): Promise<UserRecord | undefined>;
  count(): Promise<number>;
}

function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function createUserRepository(db: Db): UserRepository {
  return {
    async create(input) {
      const [row] = await db
        .insert(users)
        .values({
          id: input.id ?? newId("usr"),
          email: normalizeEmail(input.email),
          name: input.name ?? null,
          role: input.role ?? "user",
          disabled: input.disabled ?? false,
          rpm: input.rpm ?? null,
          tpm: input.tpm ?? null,
          monthlyBudgetUsd: input.monthlyBudgetUsd ?? null,
        })
        // Only the email conflict is expected; a colliding id still throws (it would be a bug).
        .onConflictDoNothing({ target: users.email })
        .returning();
      return row === undefined ? { ok: false, reason: "email_taken" } : { ok: true, user: toUserRecord(row) };
    },

    async get(id) {
      const [row] = await db.select().from(users).where(eq(users.id, id));
      return row && toUserRecord(row);
    },

    async getByEmail(email) {
      const [row] = await db
        .select()
        .from(users)
        .where(eq(users.email, normalizeEmail(email)));
      return row && toUserRecord(row);
    },

    async list({ limit, cursor }) {
      const pageSize = clampPageLimit(limit);
      const after = cursor === undefined ? undefined : decodeCursor(cursor, [cursorIdPattern])[0];
      const rows = await db
        .select()
        .from(users)
        .where(after === undefined ? undefined : gt(users.id, after))
        .orderBy(asc(users.id))
        .limit(pageSize + 1);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        data: page.map(toUserRecord),
        nextCursor: rows.length > pageSize && last ? encodeCursor([last.id]) : null,
      };
    },

    async update(id, patch) {
      const [row] = await db
        .update(users)
        .set({
          name: patch.name,
          role: patch.role,
          disabled: patch.disabled,
          rpm: patch.rpm,
          tpm: patch.tpm,
          monthlyBudgetUsd: patch.monthlyBudgetUsd,
          // drizzle leaves undefined fields out of the SET list, so an empty patch only bumps updated_at.
          updatedAt: sql`now()`,
        })
        .where(eq(users.id, id))
        .returning();
      return row && toUserRecord(row);
    },

    async count() {
      const [row] = await db.select({ n: count() }).from(users);
      return row?.n ?? 0;
    },
  };
}

export function toUserRecord(row: typeof users.$inferSelect): UserRecord {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    disabled: row.disabled,
    rpm: row.rpm,
    tpm: row.tpm,
    monthlyBudgetUsd: row.monthlyBudgetUsd,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
