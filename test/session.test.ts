/**
 * The dashboard's sign-in and the JSON API it calls: a key exchanged for an httpOnly session cookie, the same access
 * rules with the cookie as with the key, cross-site calls refused, sessions ended by sign-out, a revoked key or a
 * disabled user; a user's own keys; the request list's filters and the admins' view of everyone's requests.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CallOptions, startTestService, type TestService } from "./helpers/service.ts";

describe("dashboard sessions and the API they call", () => {
  let service: TestService;
  let user: { id: string; key: string; keyId: string };

  before(async () => {
    service = await startTestService({ provider: "builtin" });
    user = await service.createUser();
  });
  after(() => service?.close());

  const origin = () => new URL(service.url).origin;
  /** Signs in with a key; the cookie's `name=value` for later calls, and the answer. */
  async function signIn(key: string) {
    const answer = await service.call("POST", "/auth/session", { body: { api_key: key } });
    const setCookie = answer.headers.get("set-cookie") ?? "";
    return { answer, setCookie, cookie: setCookie.split(";")[0] ?? "" };
  }
  /** A call as the dashboard makes it: the cookie, and Origin on what changes something. */
  const asPage = (cookie: string, method: string, path: string, options: CallOptions = {}) =>
    service.call(method, path, {
      ...options,
      headers: { cookie, ...(method === "GET" ? {} : { origin: origin() }), ...options.headers },
    });

  test("signing in sets an httpOnly, SameSite=Strict cookie (not Secure over plain http) and names the user", async () => {
    const { answer, setCookie } = await signIn(user.key);
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.body.user.id, user.id);
    assert.equal(answer.body.role, "user");
    assert.ok(Date.parse(answer.body.expires_at) > Date.now());
    assert.match(setCookie, /^arh_session=[A-Za-z0-9_-]{43};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\//);
    assert.doesNotMatch(setCookie, /Secure/);
    assert.ok(!answer.text.includes(user.key), "the key is never echoed");
  });

  test("a bad key gets 401 and no cookie", async () => {
    const { answer, setCookie } = await signIn(`arh_${"x".repeat(40)}`);
    assert.equal(answer.status, 401);
    assert.equal(setCookie, "");
    const missing = await service.call("POST", "/auth/session", { body: {} });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.errors[0].path, "api_key");
  });

  test("the cookie works where the key does: /me, the request list, a new request", async () => {
    const { cookie } = await signIn(user.key);
    const session = await asPage(cookie, "GET", "/auth/session");
    assert.equal(session.status, 200);
    assert.equal(session.body.user.email, (await service.call("GET", "/me", { key: user.key })).body.email);
    const me = await asPage(cookie, "GET", "/me");
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.id, user.id);
    const created = await asPage(cookie, "POST", "/requests", { body: { type: "summarize", input: "From the page." } });
    assert.equal(created.status, 201, created.text);
    const listed = await asPage(cookie, "GET", "/requests?limit=1");
    assert.equal(listed.body.data[0].id, created.body.id);
  });

  test("a change made with the cookie from another origin, or with no Origin, is refused with 403", async () => {
    const { cookie } = await signIn(user.key);
    const body = { type: "summarize", input: "Cross-site." };
    const foreign = await asPage(cookie, "POST", "/requests", { body, headers: { origin: "https://evil.example" } });
    assert.equal(foreign.status, 403, foreign.text);
    const crossSite = await asPage(cookie, "POST", "/requests", { body, headers: { "sec-fetch-site": "cross-site" } });
    assert.equal(crossSite.status, 403);
    const noOrigin = await service.call("POST", "/requests", { body, headers: { cookie } });
    assert.equal(noOrigin.status, 403);
    const keyCreated = await asPage(cookie, "POST", "/me/keys", { body: {}, headers: { origin: "http://evil.test" } });
    assert.equal(keyCreated.status, 403);
    // A key in the header needs no Origin: API clients are not browsers.
    const withKey = await service.call("POST", "/requests", { key: user.key, body });
    assert.equal(withKey.status, 201);
  });

  test("a user's session cannot reach admin endpoints; an admin's and the operator's can", async () => {
    const { cookie } = await signIn(user.key);
    assert.equal((await asPage(cookie, "GET", "/admin/users")).status, 403);
    assert.equal((await asPage(cookie, "GET", "/admin/requests")).status, 403);

    const operator = await signIn(service.adminKey);
    assert.equal(operator.answer.status, 201);
    assert.equal(operator.answer.body.user, null);
    assert.equal(operator.answer.body.role, "admin");
    assert.equal((await asPage(operator.cookie, "GET", "/admin/users")).status, 200);
    assert.equal((await asPage(operator.cookie, "GET", "/me")).status, 403);

    const admin = await service.call("POST", "/admin/users", {
      key: service.adminKey,
      body: { email: `admin-${Date.now()}@example.com`, role: "admin" },
    });
    assert.equal(admin.status, 201, admin.text);
    const adminKey = await service.call("POST", `/admin/users/${admin.body.id}/keys`, {
      key: service.adminKey,
      body: {},
    });
    assert.equal(adminKey.status, 201, adminKey.text);
    const adminSession = await signIn(adminKey.body.key);
    assert.equal(adminSession.answer.status, 201, adminSession.answer.text);
    assert.equal(adminSession.answer.body.role, "admin");
    assert.equal((await asPage(adminSession.cookie, "GET", "/admin/users")).status, 200);
  });

  test("sign-out ends the session on the server: the old cookie no longer works", async () => {
    const { cookie } = await signIn(user.key);
    const out = await asPage(cookie, "DELETE", "/auth/session");
    assert.equal(out.status, 204);
    assert.match(out.headers.get("set-cookie") ?? "", /arh_session=;.*Max-Age=0/);
    assert.equal((await asPage(cookie, "GET", "/auth/session")).status, 401);
    assert.equal((await asPage(cookie, "GET", "/me")).status, 401);
  });

  test("revoking the key a session was opened with, or disabling its user, ends the session at once", async () => {
    const other = await service.createUser();
    const { cookie } = await signIn(other.key);
    assert.equal((await asPage(cookie, "GET", "/me")).status, 200);
    await service.call("DELETE", `/admin/keys/${other.keyId}`, { key: service.adminKey });
    assert.equal((await asPage(cookie, "GET", "/me")).status, 401);

    const third = await service.createUser();
    const session = await signIn(third.key);
    await service.call("PATCH", `/admin/users/${third.id}`, { key: service.adminKey, body: { disabled: true } });
    assert.equal((await asPage(session.cookie, "GET", "/me")).status, 401);
    assert.equal((await asPage(session.cookie, "GET", "/auth/session")).status, 401);
  });

  test("/me/keys: create (shown once), list without the key, set limits, revoke; another user's key is a 404", async () => {
    const owner = await service.createUser();
    const { cookie } = await signIn(owner.key);
    const created = await asPage(cookie, "POST", "/me/keys", { body: { name: "laptop", limits: { rpm: 5 } } });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.key, /^arh_/);
    assert.equal(created.body.limits.rpm, 5);
    assert.equal(created.headers.get("cache-control"), "no-store");
    const works = await service.call("GET", "/me", { key: created.body.key });
    assert.equal(works.status, 200);

    const listed = await asPage(cookie, "GET", "/me/keys");
    const entry = listed.body.data.find((key: { id: string }) => key.id === created.body.id);
    assert.equal(entry.name, "laptop");
    assert.equal(entry.key, undefined);
    assert.ok(!listed.text.includes(created.body.key));

    const patched = await asPage(cookie, "PATCH", `/me/keys/${created.body.id}`, { body: { limits: { tpm: 1000 } } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.limits, { rpm: 5, tpm: 1000 });

    const stranger = await service.createUser();
    const notTheirs = await service.call("DELETE", `/me/keys/${created.body.id}`, { key: stranger.key });
    assert.equal(notTheirs.status, 404);

    const revoked = await asPage(cookie, "DELETE", `/me/keys/${created.body.id}`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.ok(revoked.body.revoked_at);
    assert.equal((await service.call("GET", "/me", { key: created.body.key })).status, 401);
  });

  test("the request list filters by model, provider and time; admins list anyone's with the same filters", async () => {
    const owner = await service.createUser();
    const started = new Date().toISOString();
    for (const model of ["mock-small", "mock-large", "mock-large"]) {
      const made = await service.call("POST", "/requests", {
        key: owner.key,
        body: { type: "summarize", input: `filters ${model} ${Math.random()}`, model },
      });
      assert.equal(made.status, 201, made.text);
    }
    const large = await service.call("GET", "/requests?model=mock-large", { key: owner.key });
    assert.deepEqual(
      large.body.data.map((item: { model: string }) => item.model),
      ["mock-large", "mock-large"],
    );
    const byProvider = await service.call("GET", "/requests?provider=mock", { key: owner.key });
    assert.equal(byProvider.body.data.length, 3);
    const none = await service.call("GET", "/requests?provider=openai", { key: owner.key });
    assert.equal(none.body.data.length, 0);
    const since = await service.call("GET", `/requests?from=${encodeURIComponent(started)}`, { key: owner.key });
    assert.equal(since.body.data.length, 3);
    const before = await service.call("GET", `/requests?to=${encodeURIComponent(started)}`, { key: owner.key });
    assert.equal(before.body.data.length, 0);
    const bad = await service.call("GET", "/requests?from=yesterday", { key: owner.key });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.errors[0].path, "from");

    assert.equal((await service.call("GET", "/admin/requests", { key: owner.key })).status, 403);
    const theirs = await service.call("GET", `/admin/requests?user_id=${owner.id}&model=mock-large&limit=1`, {
      key: service.adminKey,
    });
    assert.equal(theirs.status, 200, theirs.text);
    assert.equal(theirs.body.data.length, 1);
    assert.equal(theirs.body.data[0].user_id, owner.id);
    const next = await service.call(
      "GET",
      `/admin/requests?user_id=${owner.id}&model=mock-large&limit=1&cursor=${theirs.body.next_cursor}`,
      { key: service.adminKey },
    );
    assert.equal(next.body.data.length, 1);
    assert.notEqual(next.body.data[0].id, theirs.body.data[0].id);
    assert.equal(next.body.next_cursor, null);

    const everyone = await service.call("GET", "/admin/requests?limit=100", { key: service.adminKey });
    const owners = new Set(everyone.body.data.map((item: { user_id: string }) => item.user_id));
    assert.ok(owners.has(owner.id) && owners.has(user.id), "everyone's requests");
    const detail = await service.call("GET", `/admin/requests/${theirs.body.data[0].id}`, { key: service.adminKey });
    assert.equal(detail.status, 200);
    assert.equal(detail.body.user_id, owner.id);
    assert.equal(detail.body.source, "native");
    assert.equal(typeof detail.body.input, "string");
  });
});
