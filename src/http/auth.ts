import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../errors.ts";
import type { KeyVerifier, Principal } from "../keys/key-verifier.ts";
import { safeEqual } from "../keys/api-key.ts";
import type { AuthFailureLimiter } from "../limits/auth-failures.ts";
import { assertSameOrigin, type SessionAuth } from "./session.ts";

/** Who may call a route: anyone, any valid key, or an admin (ADMIN_API_KEY or an admin user's key). */
export type Access = "public" | "user" | "admin";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** Set by the auth hook on every non-public route; null for the operator's ADMIN_API_KEY. */
    principal: Principal | null;
  }
}

export interface AuthOptions {
  verifier: KeyVerifier;
  adminApiKey: string | undefined;
  /** Refuses an address that keeps presenting bad keys. Default: no limit. */
  failures?: AuthFailureLimiter;
  /** Called when an address is refused for its failures (the metric arh_rate_limit_rejections_total). */
  onBlocked?: () => void;
  /** The dashboard's sessions: a call without a key may be made with the session cookie. */
  sessions?: SessionAuth;
}

/** The key: `Authorization: Bearer <key>`, or `x-api-key: <key>` (what Anthropic's SDKs and Claude Code send). */
function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  const apiKey = request.headers["x-api-key"];
  return typeof apiKey === "string" && apiKey.trim() !== "" ? apiKey.trim() : undefined;
}

const unauthorized = (message: string) =>
  new AppError("unauthorized", message, { headers: { "www-authenticate": 'Bearer realm="ai-request-handler"' } });

const tooManyFailures = (blockedMs: number) =>
  new AppError("rate_limited", "too many failed authentication attempts from your address; try again later", {
    retryAfterSeconds: Math.max(1, Math.ceil(blockedMs / 1000)),
    headers: { "x-should-retry": "false" },
  });

/**
 * The onRequest hook: runs before the body is even read, so an unauthenticated caller costs no parsing and
 * gets 401 rather than a validation error.
 */
export function createAuthHook(options: AuthOptions) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const access = request.routeOptions.config.access ?? "public";
    if (access === "public") return;

    const key = bearer(request);
    if (!key) return authenticateSession(request, access);

    const blockedMs = options.failures?.blockedForMs(request.ip) ?? 0;
    if (blockedMs > 0) {
      options.onBlocked?.();
      throw tooManyFailures(blockedMs);
    }

    if (access === "admin" && options.adminApiKey && safeEqual(key, options.adminApiKey)) {
      request.principal = null;
      return;
    }
    const principal = await options.verifier.verify(key);
    if (!principal) {
      const nowBlockedMs = (await options.failures?.recordFailure(request.ip)) ?? 0;
      if (nowBlockedMs > 0) {
        options.onBlocked?.();
        throw tooManyFailures(nowBlockedMs);
      }
      throw unauthorized("invalid API key: unknown, revoked or expired");
    }
    if (access === "admin" && principal.user.role !== "admin") {
      throw new AppError("forbidden", "this endpoint needs an admin key");
    }
    request.principal = principal;
  };

  /** A call with the dashboard's session cookie instead of a key: the same access rules, from the same origin. */
  async function authenticateSession(request: FastifyRequest, access: Access): Promise<void> {
    const principal = options.sessions ? await options.sessions.principalOf(request) : undefined;
    // A missing key is not counted as a failure: it costs no lookup and guesses nothing.
    if (principal === undefined) throw unauthorized("missing API key: send Authorization: Bearer <key>");
    assertSameOrigin(request);
    if (access === "admin" && principal !== null && principal.user.role !== "admin") {
      throw new AppError("forbidden", "this endpoint needs an admin key");
    }
    request.principal = principal;
  }
}

/** The calling user on a route whose access is "user". */
export function callerOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError("forbidden", "the operator key is for /admin endpoints only");
  return request.principal;
}
