/**
 * Dashboard sessions in storage, on PostgreSQL and on the embedded PGlite: a session lives until it expires, is
 * signed out, or its key is revoked or its user disabled; the operator's has no user.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createApiKeyRepository } from "../src/db/api-keys.ts";
import { createSessionRepository } from "../src/db/sessions.ts";
import { createUserRepository } from "../src/db/users.ts";
import { newId } from "../src/ids.ts";
import { openTestDatabase, storageBackends, type TestDatabase } from "./helpers/databases.ts";

const hour = 3_600_000;
const tokenHash = () => createHash("sha256").update(randomBytes(32)).digest("hex");

for (const backend of storageBackends) {
  describe(`sessions on ${backend}`, () => {
    let handle: TestDatabase;
    let sessions: ReturnType<typeof createSessionRepository>;
    let users: ReturnType<typeof createUserRepository>;
    let keys: ReturnType<typeof createApiKeyRepository>;

    before(async () => {
      handle = await openTestDatabase(backend);
      sessions = createSessionRepository(handle.database.db);
      users = createUserRepository(handle.database.db);
      keys = createApiKeyRepository(handle.database.db);
    });
    after(() => handle?.close());

    async function userWithKey() {
      const created = await users.create({ email: `${newId("usr")}@example.com` });
      assert.ok(created.ok);
      const key = await keys.create({
        id: newId("key"),
        userId: created.user.id,
        name: null,
        prefix: "arh_test",
        hash: tokenHash(),
        expiresAt: null,
      });
      return { user: created.user, key };
    }

    async function open(owner: { user: { id: string }; key: { id: string } } | null, expiresInMs = hour) {
      const hash = tokenHash();
      await sessions.create({
        id: newId("ses"),
        tokenHash: hash,
        userId: owner?.user.id ?? null,
        apiKeyId: owner?.key.id ?? null,
        expiresAt: new Date(Date.now() + expiresInMs),
      });
      return hash;
    }

    test("a live session names its user and key; the operator's names none", async () => {
      const owner = await userWithKey();
      const live = await sessions.findLive(await open(owner));
      assert.equal(live?.owner?.user.id, owner.user.id);
      assert.equal(live?.owner?.key.id, owner.key.id);
      const operator = await sessions.findLive(await open(null));
      assert.ok(operator);
      assert.equal(operator.owner, null);
      assert.equal(await sessions.findLive(tokenHash()), undefined);
    });

    test("expired, signed out, key revoked or user disabled: no longer live", async () => {
      const owner = await userWithKey();
      const hash = await open(owner);
      assert.equal(await sessions.findLive(hash, new Date(Date.now() + 2 * hour)), undefined);

      assert.equal(await sessions.delete(hash), true);
      assert.equal(await sessions.findLive(hash), undefined);
      assert.equal(await sessions.delete(hash), false);

      const revoked = await open(owner);
      await keys.revoke(owner.key.id);
      assert.equal(await sessions.findLive(revoked), undefined);

      const other = await userWithKey();
      const disabled = await open(other);
      await users.update(other.user.id, { disabled: true });
      assert.equal(await sessions.findLive(disabled), undefined);
    });

    test("expired sessions are removed; live ones stay", async () => {
      const owner = await userWithKey();
      const stale = await open(owner, -1000);
      const fresh = await open(owner);
      assert.ok((await sessions.deleteExpired()) >= 1);
      assert.equal(await sessions.delete(stale), false);
      assert.ok(await sessions.findLive(fresh));
    });
  });
}
