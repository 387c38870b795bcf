/**
 * Calling an upstream model API over HTTP: an undici Pool with keep-alive, deadlines, and the retry policy. Every
 * provider that speaks HTTP uses it; what differs between them (routes, headers, error bodies, stream events) stays
 * in the provider's module. Not global fetch: a pooled `request` costs about a quarter of fetch's CPU per call
 * (DESIGN.md).
 *
 * Retry policy (openai-node's, made explicit): 429, 5xx, connection errors and timeouts are retried up to
 * `maxRetries` times with exponential backoff and full jitter, or after the upstream's Retry-After when it sends one
 * (`retry-after-ms`, `Retry-After` in seconds or as an HTTP date) — unless that exceeds `retryAfterCapMs`, in which
 * case the call fails at once rather than hold the client. Other 4xx are never retried, nor is an aborted call.
 * A stream is retried only until its first event arrived: after that the client has seen output.
 */
import { setTimeout as delay } from "node:timers/promises";
import { type Dispatcher, Pool } from "undici";
import { AppError } from "../errors.ts";
import type { CallOptions, CallOutcome } from "./provider.ts";
import { readSseData } from "./sse.ts";
import {
  AttemptFailed,
  abortError,
  classify,
  type Failure,
  isRetryable,
  parseRetryAfterMs,
  toAppError,
} from "./upstream-failure.ts";

export interface UpstreamHttpOptions {
  /** The API's base URL, e.g. `https://api.openai.com/v1`; its path prefixes every route. */
  baseUrl: string;
  /** Removed from any upstream text that reaches an error message, should the upstream ever echo it. */
  secret: string;
  /**
   * The longest wait with nothing arriving: for the answer's headers, and between two chunks of its body
   * (undici's headersTimeout/bodyTimeout, whose timers tick every ~0.5 s: sub-second values fire up to ~1 s late).
   */
  timeoutMs: number;
  /** Retries after the first attempt (429, 5xx, connection errors, timeouts). */
  maxRetries: number;
  /** The longest wait for a TCP (and TLS) connection to the upstream. Default: the smaller of timeoutMs and 10 s. */
  connectTimeoutMs?: number;
  /**
   * The longest a whole call may take, retries, backoff and a stream's every chunk included; past it the call
   * fails as a timeout. Default: no limit beyond the others.
   */
  totalTimeoutMs?: number;
  /** Connections kept to the upstream. Default 128. */
  connections?: number;
  /** The longest Retry-After honoured; a longer one fails the call at once. Default 10 000 ms. */
  retryAfterCapMs?: number;
  /** Backoff ceiling of the first retry; it doubles per retry up to `backoffMaxMs`, fully jittered. Default 500 ms. */
  backoffBaseMs?: number;
  /** Default 8 000 ms. */
  backoffMaxMs?: number;
}

/** The upstream's own error message and parameter, read from an error answer's JSON body. */
export type ErrorBodyReader = (body: unknown) => { message?: string; param?: string };

export interface UpstreamHttp {
  /** One JSON answer, with retries. */
  requestJson<T>(
    method: "GET" | "POST",
    route: string,
    payload: string | undefined,
    headers: Record<string, string>,
    callOptions: CallOptions | undefined,
  ): Promise<CallOutcome<T>>;
  /**
   * A server-sent event stream's data, one event at a time, until `isLast` says an event ends it (that event is not
   * yielded). Opened and read up to its first event inside the retry loop: until then a retry is invisible. A stream
   * that closes before its last event, goes silent or breaks fails with upstream_error or upstream_timeout.
   */
  streamEvents(
    route: string,
    payload: string,
    headers: Record<string, string>,
    callOptions: CallOptions | undefined,
    isLast: (data: string) => boolean,
  ): AsyncGenerator<string>;
  close(): Promise<void>;
}

interface CallSignal {
  signal?: AbortSignal;
  timedOut(): boolean;
  /** Stops the deadline's timer and lets go of the caller's signal; called once the call has ended. */
  end(): void;
}

export function createUpstreamHttp(options: UpstreamHttpOptions, readErrorBody: ErrorBodyReader): UpstreamHttp {
  const {
    secret,
    timeoutMs,
    maxRetries,
    connections = 128,
    retryAfterCapMs = 10_000,
    backoffBaseMs = 500,
    backoffMaxMs = 8_000,
  } = options;
  const base = new URL(options.baseUrl);
  const basePath = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(base.origin, {
    connections,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: options.connectTimeoutMs ?? Math.min(timeoutMs, 10_000),
  });
  const { totalTimeoutMs } = options;

  /**
   * The caller's signal joined with the call's overall deadline. `timedOut()` tells a deadline from a caller who
   * left, since both abort the same signal. Not AbortSignal.timeout/any: their timer cannot be cleared, so every
   * call would keep a timer and two signals alive for the whole deadline (10 minutes by default) after it ended.
   */
  function callSignal(callOptions: CallOptions | undefined): CallSignal {
    const caller = callOptions?.signal;
    if (!totalTimeoutMs) return { signal: caller, timedOut: () => false, end: () => {} };
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException("The upstream call's deadline passed", "TimeoutError"));
    }, totalTimeoutMs);
    const onCallerAbort = () => controller.abort(caller?.reason);
    if (caller?.aborted) onCallerAbort();
    else caller?.addEventListener("abort", onCallerAbort, { once: true });
    return {
      signal: controller.signal,
      timedOut: () => timedOut && !caller?.aborted,
      end() {
        clearTimeout(timer);
        caller?.removeEventListener("abort", onCallerAbort);
      },
    };
  }

  const totalTimeoutError = () =>
    new AppError("upstream_timeout", `the upstream did not finish within ${totalTimeoutMs} ms`);

  /** The upstream's own words, minus our secret should it ever echo it. */
  const redact = (text: string) => (secret ? text.replaceAll(secret, "[redacted]") : text);

  async function send(
    method: "GET" | "POST",
    route: string,
    payload: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const response = await pool.request({ method, path: basePath + route, headers, body: payload, signal });
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    throw new AttemptFailed(await readFailure(response));
  }

  async function readFailure(response: Dispatcher.ResponseData): Promise<Failure> {
    const text = await response.body.text();
    let message = text.slice(0, 500);
    let param: string | undefined;
    try {
      const given = readErrorBody(JSON.parse(text));
      if (given.message !== undefined) message = given.message;
      param = given.param;
    } catch {
      // Not JSON (a proxy's HTML page, say): its first characters are the message.
    }
    return {
      kind: "status",
      status: response.statusCode,
      message: redact(message) || `HTTP ${response.statusCode}`,
      param,
      retryAfterMs: parseRetryAfterMs(response.headers),
    };
  }

  /** Runs `attempt` until it succeeds, fails for good, or the retries are spent. */
  async function withRetries<T>(
    attempt: () => Promise<T>,
    callOptions: CallOptions | undefined,
    call: CallSignal,
  ): Promise<CallOutcome<T>> {
    const { signal } = call;
    const started = performance.now();
    for (let retries = 0; ; retries++) {
      let failure: Failure | undefined;
      try {
        return { value: await attempt(), upstreamMs: performance.now() - started };
      } catch (error) {
        if (signal?.aborted) throw call.timedOut() ? totalTimeoutError() : abortError(signal);
        failure = classify(error);
        if (!failure) throw error;
      }
      if (!isRetryable(failure) || retries >= maxRetries) throw toAppError(failure, retries + 1, timeoutMs);
      const retryAfterMs = failure.kind === "status" ? failure.retryAfterMs : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > retryAfterCapMs) {
        // Waiting that long would hold the client past any sensible deadline: fail now and pass the hint on.
        const error = toAppError(failure, retries + 1, timeoutMs);
        throw new AppError(
          "upstream_error",
          `${error.message} (it asked to retry after ${Math.ceil(retryAfterMs / 1000)} s, beyond the ${retryAfterCapMs / 1000} s cap)`,
          { retryAfterSeconds: Math.ceil(retryAfterMs / 1000) },
        );
      }
      const delayMs = retryAfterMs ?? Math.random() * Math.min(backoffMaxMs, backoffBaseMs * 2 ** retries);
      callOptions?.onRetry?.({
        attempt: retries + 2,
        reason: failure.kind === "status" ? String(failure.status) : failure.kind,
        delayMs,
      });
      try {
        await delay(delayMs, undefined, signal ? { signal } : undefined);
      } catch (error) {
        if (signal?.aborted) throw call.timedOut() ? totalTimeoutError() : abortError(signal);
        throw error;
      }
    }
  }

  return {
    async requestJson<T>(
      method: "GET" | "POST",
      route: string,
      payload: string | undefined,
      headers: Record<string, string>,
      callOptions: CallOptions | undefined,
    ): Promise<CallOutcome<T>> {
      const call = callSignal(callOptions);
      try {
        return await withRetries(
          async () => {
            const response = await send(method, route, payload, headers, call.signal);
            try {
              return (await response.body.json()) as T;
            } catch (error) {
              if (error instanceof SyntaxError)
                throw new AppError("upstream_error", "the upstream answered invalid JSON");
              throw error;
            }
          },
          callOptions,
          call,
        );
      } finally {
        call.end();
      }
    },

    async *streamEvents(route, payload, headers, callOptions, isLast) {
      const call = callSignal(callOptions);
      const { signal } = call;
      const openStream = async () => {
        const response = await send("POST", route, payload, headers, signal);
        const events = readSseData(response.body);
        try {
          return { response, events, first: await events.next() };
        } catch (error) {
          response.body.destroy();
          throw error;
        }
      };
      let opened: Awaited<ReturnType<typeof openStream>>;
      try {
        opened = (await withRetries(openStream, callOptions, call)).value;
      } catch (error) {
        call.end();
        throw error;
      }

      let finished = false;
      try {
        for (let event = opened.first; !event.done; event = await opened.events.next()) {
          if (isLast(event.value)) {
            finished = true;
            break;
          }
          yield event.value;
        }
        if (!finished) throw new AppError("upstream_error", "the upstream closed the stream before its end");
      } catch (error) {
        if (signal?.aborted) throw call.timedOut() ? totalTimeoutError() : abortError(signal);
        if (error instanceof AppError) throw error;
        const failure = classify(error);
        if (failure?.kind === "timeout") {
          throw new AppError("upstream_timeout", `the upstream stream went silent for ${timeoutMs} ms`);
        }
        if (failure?.kind === "connection") {
          throw new AppError("upstream_error", `the upstream stream broke: ${failure.message}`);
        }
        throw error;
      } finally {
        call.end();
        if (finished) {
          // Read the end of the body so the connection goes back to the pool.
          opened.response.body.dump().catch(() => {});
        } else {
          // The consumer stopped early, or the stream failed: close the connection, the upstream stops generating.
          opened.response.body.destroy();
        }
      }
    },

    close() {
      return pool.close();
    },
  };
}
