import { createHash } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import { throttledWarning } from "../observability/throttled-log.ts";
import { canonicalJson } from "../requests/canonical-json.ts";
import type { IdempotencyStore } from "../requests/idempotency-store.ts";
import { callerOf } from "./auth.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Set when this request claimed an Idempotency-Key: its answer is kept for retries. */
    idempotencyClaim?: IdempotencyClaim;
  }
}

interface IdempotencyClaim {
  scope: string;
  key: string;
  fingerprint: string;
}

export interface IdempotencyOptions {
  store: IdempotencyStore;
  /** A retry that arrives while the first request runs: wait for its answer, or refuse with 409. */
  whileRunning: "wait" | "reject";
  /** The longest a retry waits for the first request. */
  waitMs: number;
  logger: Logger;
}

/** The headers a replayed answer carries besides its body. */
const replayedHeaders = ["content-type", "location", "x-cache", "x-record-id"];
const keyShape = /^[\x21-\x7e]{1,255}$/;
const pollIntervalMs = 25;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/**
 * `Idempotency-Key` on POST /requests and /v1/*: a retry with the same key and body gets the first answer, and is
 * neither run, stored nor billed again. Only successful answers are kept: after an error the retry runs afresh.
 */
export function createIdempotencyHooks(options: IdempotencyOptions) {
  const { store } = options;
  const storeUnavailable = throttledWarning(
    options.logger,
    "idempotency store unavailable; requests with an Idempotency-Key run without it",
  );
  const keepFailed = throttledWarning(options.logger, "could not keep the answer for Idempotency-Key retries");

  /**
   * Synchronous for a request without the header (nearly all of them: no promise per request); with it, the claim
   * runs and the request goes on (`done`) or has been answered (a replay, or the error handler's answer).
   */
  function preHandler(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    if (request.headers["idempotency-key"] === undefined) {
      done();
      return;
    }
    claimFor(request, reply).then(
      (answered) => {
        if (!answered) done();
      },
      (error: Error) => done(error),
    );
  }

  /** True when the request was answered here (a replay of the stored answer). */
  async function claimFor(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const header = request.headers["idempotency-key"];
    if (typeof header !== "string" || !keyShape.test(header)) {
      const message = "must be 1 to 255 visible ASCII characters";
      throw new AppError("invalid_request", `Idempotency-Key: ${message}`, {
        errors: [{ path: "idempotency-key", message }],
      });
    }
    const scope = callerOf(request).user.id;
    const key = sha256(header);
    const fingerprint = sha256(`${request.method} ${request.routeOptions.url} ${canonicalJson(request.body)}`);

    const deadline = Date.now() + options.waitMs;
    for (;;) {
      let claim: Awaited<ReturnType<IdempotencyStore["claim"]>>;
      try {
        claim = await store.claim(scope, key, fingerprint);
      } catch (error) {
        // Without the store the request still runs, once, as if it had no key.
        storeUnavailable(error);
        return false;
      }
      switch (claim.state) {
        case "new":
          request.idempotencyClaim = { scope, key, fingerprint };
          return false;
        case "mismatch":
          throw new AppError("validation_failed", "Idempotency-Key: already used with a different request body", {
            errors: [{ path: "idempotency-key", message: "already used with a different request body" }],
          });
        case "done": {
          const { status, headers, body } = claim.response;
          reply
            .code(status)
            .headers({ ...headers, "idempotent-replayed": "true" })
            .send(body);
          return true;
        }
        case "running":
          if (options.whileRunning === "reject" || Date.now() >= deadline) {
            throw new AppError("conflict", "a request with this Idempotency-Key is still running; retry later", {
              retryAfterSeconds: 1,
            });
          }
          await delay(pollIntervalMs);
      }
    }
  }

  /** Synchronous without a claim; with one, the answer is kept (or the claim let go) before it is sent. */
  function onSend(
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: Error | null, payload?: unknown) => void,
  ): void {
    const claim = request.idempotencyClaim;
    if (!claim) {
      done(null, payload);
      return;
    }
    request.idempotencyClaim = undefined;
    void keep(claim, reply, payload).then(() => done(null, payload));
  }

  /** Never rejects: an answer that cannot be kept is still sent. */
  async function keep(claim: IdempotencyClaim, reply: FastifyReply, payload: unknown): Promise<void> {
    const replayable = reply.statusCode < 300 && (typeof payload === "string" || Buffer.isBuffer(payload));
    try {
      if (replayable) {
        const headers: Record<string, string> = {};
        for (const name of replayedHeaders) {
          const value = reply.getHeader(name);
          if (value !== undefined) headers[name] = String(value);
        }
        await store.complete(claim.scope, claim.key, claim.fingerprint, {
          status: reply.statusCode,
          headers,
          body: String(payload),
        });
      } else {
        await store.release(claim.scope, claim.key, claim.fingerprint);
      }
    } catch (error) {
      keepFailed(error);
    }
  }

  return { preHandler, onSend };
}

export type IdempotencyHooks = ReturnType<typeof createIdempotencyHooks>;
