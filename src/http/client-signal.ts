import type { FastifyReply } from "fastify";
import type { CacheMode, CallContext } from "../requests/request-service.ts";

/**
 * An AbortSignal that fires when the client goes away before its answer is complete, so the upstream call it
 * was waiting for is cancelled at once instead of running on for nobody.
 */
function abortOnClientClose(reply: FastifyReply): AbortSignal {
  const reason = () => new Error("the client closed the connection");
  // Asked for after the client left: the close event has passed already.
  if (reply.raw.closed && !reply.raw.writableFinished) return AbortSignal.abort(reason());
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort(reason());
  });
  return controller.signal;
}

/**
 * The pipeline's context for one HTTP request. The signal is made on first use: a cache hit never reads it, and a
 * controller with its listener on every request was a measurable part of a hit's cost.
 */
export function callContext(cacheMode: CacheMode, reply: FastifyReply): CallContext {
  let signal: AbortSignal | undefined;
  return {
    cacheMode,
    get signal() {
      signal ??= abortOnClientClose(reply);
      return signal;
    },
  };
}
