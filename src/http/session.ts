import { createHash, randomBytes } from "node:crypto";
import { parseCookie, stringifySetCookie } from "cookie";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { SessionRepository } from "../db/sessions.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import { safeEqual } from "../keys/api-key.ts";
import type { KeyVerifier, Principal } from "../keys/key-verifier.ts";
import type { AuthFailureLimiter } from "../limits/auth-failures.ts";
import { formatUser, userSchema } from "./admin.ts";

/**
 * The dashboard's sign-in: an API key exchanged for a server-side session whose token travels only in an httpOnly,
 * SameSite=Strict cookie (Secure over HTTPS), so no script of the page ever holds a credential. The database keeps
 * the token's hash; every call made with the cookie asks it again (sessions.ts), so sign-out, a revoked key or a
 * disabled user ends the session at once on every instance.
 */
export const sessionCookie = "arh_session";

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

/** The session token of a request's cookie, if it sends one. */
export function sessionTokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header?.includes(sessionCookie)) return undefined;
  const token = parseCookie(header)[sessionCookie];
  return token && /^[A-Za-z0-9_-]{43}$/.test(token) ? token : undefined;
}

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Cross-site request protection for calls that a cookie authenticates. SameSite=Strict already keeps the cookie off
 * cross-site requests in current browsers; this also holds for older ones and for sibling subdomains (same site,
 * other origin): a state-changing call must say it comes from this very origin.
 */
export function assertSameOrigin(request: FastifyRequest): void {
  if (safeMethods.has(request.method)) return;
  const fetchSite = request.headers["sec-fetch-site"];
  if (fetchSite !== undefined && fetchSite !== "same-origin") {
    throw new AppError("forbidden", "a signed-in call must come from the dashboard's own origin");
  }
  const origin = request.headers.origin;
  if (origin === undefined) {
    if (fetchSite === "same-origin") return;
    throw new AppError("forbidden", "a signed-in call that changes something must send Origin");
  }
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new AppError("forbidden", "Origin is not a URL");
  }
  if (host !== request.host)
    throw new AppError("forbidden", "a signed-in call must come from the dashboard's own origin");
}

export interface SessionAuth {
  /** The principal of the request's live session (null: the operator), or undefined when it has none. */
  principalOf(request: FastifyRequest): Promise<Principal | null | undefined>;
}

export function createSessionAuth(sessions: SessionRepository): SessionAuth {
  return {
    async principalOf(request) {
      const token = sessionTokenOf(request);
      if (!token) return undefined;
      const live = await sessions.findLive(hashToken(token));
      // The operator's session has no owner: the null principal, as ADMIN_API_KEY gives.
      return live ? live.owner : undefined;
    },
  };
}

export interface SessionRoutesDeps {
  sessions: SessionRepository;
  verifier: KeyVerifier;
  adminApiKey: string | undefined;
  ttlHours: number;
  failures?: AuthFailureLimiter;
}

const signInBody = z.strictObject({ api_key: z.string().min(1).max(512) }).meta({ id: "SignIn" });
const sessionSchema = z
  .object({
    user: userSchema.nullable().describe("null for the operator's ADMIN_API_KEY"),
    role: z.enum(["admin", "user"]),
    expires_at: z.string(),
  })
  .meta({ id: "Session" });

export function registerSessionRoutes(app: FastifyInstance, deps: SessionRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const tags = ["dashboard"];
  const config = { access: "public" as const };

  const answer = (principal: Principal | null, expiresAt: Date) => ({
    user: principal ? formatUser(principal.user) : null,
    role: principal ? principal.user.role : ("admin" as const),
    expires_at: expiresAt.toISOString(),
  });

  routes.post("/auth/session", {
    config,
    schema: {
      summary: "Sign in to the dashboard: an API key for a session cookie (httpOnly, SameSite=Strict)",
      tags,
      body: signInBody,
      response: { 201: sessionSchema },
    },
    handler: async (request, reply) => {
      // A page of another site must not sign its visitor in with the attacker's key (login CSRF).
      if (request.headers.origin !== undefined) assertSameOrigin(request);
      const principal = await signIn(request, request.body.api_key);
      const token = randomBytes(32).toString("base64url");
      const expiresAt = new Date(Date.now() + deps.ttlHours * 3_600_000);
      await deps.sessions.deleteExpired();
      await deps.sessions.create({
        id: newId("ses"),
        tokenHash: hashToken(token),
        userId: principal?.user.id ?? null,
        apiKeyId: principal?.key?.id ?? null,
        expiresAt,
      });
      setSessionCookie(request, reply, token, expiresAt);
      return reply.code(201).send(answer(principal, expiresAt));
    },
  });

  routes.get("/auth/session", {
    config,
    schema: { summary: "The signed-in session, or 401", tags, response: { 200: sessionSchema } },
    handler: async (request, reply) => {
      reply.header("cache-control", "no-store");
      const token = sessionTokenOf(request);
      const live = token ? await deps.sessions.findLive(hashToken(token)) : undefined;
      if (!live) throw new AppError("unauthorized", "not signed in, or the session has ended");
      return answer(live.owner, live.session.expiresAt);
    },
  });

  routes.delete("/auth/session", {
    config,
    schema: { summary: "Sign out: the session ends on the server and the cookie is cleared", tags },
    handler: async (request, reply) => {
      const token = sessionTokenOf(request);
      if (token) {
        assertSameOrigin(request);
        await deps.sessions.delete(hashToken(token));
      }
      reply.header("set-cookie", stringifySetCookie(sessionCookie, "", { ...cookieOptions(request), maxAge: 0 }));
      return reply.code(204).send();
    },
  });

  async function signIn(request: FastifyRequest, key: string): Promise<Principal | null> {
    const blockedMs = deps.failures?.blockedForMs(request.ip) ?? 0;
    if (blockedMs > 0) throw tooManyFailures(blockedMs);
    if (deps.adminApiKey && safeEqual(key, deps.adminApiKey)) return null;
    const principal = await deps.verifier.verify(key);
    if (principal) return principal;
    const nowBlockedMs = (await deps.failures?.recordFailure(request.ip)) ?? 0;
    if (nowBlockedMs > 0) throw tooManyFailures(nowBlockedMs);
    throw new AppError("unauthorized", "invalid API key: unknown, revoked or expired", { param: "api_key" });
  }
}

/** Written here rather than by @fastify/cookie, whose plugin would add an onSend hook to every answer. */
function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string, expiresAt: Date): void {
  reply.header(
    "set-cookie",
    stringifySetCookie(sessionCookie, token, { ...cookieOptions(request), expires: expiresAt }),
  );
}

const cookieOptions = (request: FastifyRequest) => ({
  httpOnly: true,
  sameSite: "strict" as const,
  secure: request.protocol === "https",
  path: "/",
});

const tooManyFailures = (blockedMs: number) =>
  new AppError("rate_limited", "too many failed authentication attempts from your address; try again later", {
    retryAfterSeconds: Math.max(1, Math.ceil(blockedMs / 1000)),
  });
