/**
 * The real provider: OpenAI's HTTP API (or any compatible upstream) over an undici Pool with keep-alive.
 * Not global fetch: a pooled `request` costs about a quarter of fetch's CPU per call (DESIGN.md).
 *
 * Retry policy (openai-node's, made explicit): 429, 5xx, connection errors and timeouts are retried up to
 * `maxRetries` times with exponential backoff and full jitter, or after the upstream's Retry-After when it sends one
 * (`retry-after-ms`, `Retry-After` in seconds or as an HTTP date) — unless that exceeds `retryAfterCapMs`, in which
 * case the call fails at once rather than hold the client. Other 4xx are never retried, nor is an aborted call.
 * A stream is retried only until its first chunk arrived: after that the client has seen output.
 */
import { setTimeout as delay } from "node:timers/promises";
import { type Dispatcher, Pool } from "undici";
import { AppError } from "../errors.ts";
import type {
  CallOptions,
  CallOutcome,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  ModelList,
  Provider,
} from "./provider.ts";

export interface OpenAIProviderOptions {
  /** The API's base URL, e.g. `https://api.openai.com/v1`; its path prefixes every route. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; never logged nor put in an error message. */
  apiKey: string;
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

interface CallSignal {
  signal?: AbortSignal;
  timedOut(): boolean;
  /** Stops the deadline's timer and lets go of the caller's signal; called once the call has ended. */
  end(): void;
}

/** Why one attempt failed, in terms the retry policy decides on. */
type Failure =
  | { kind: "status"; status: number; message: string; param: string | undefined; retryAfterMs: number | undefined }
  | { kind: "timeout" }
  | { kind: "connection"; message: string };

/** Carries a classified failure out of an attempt; never leaves this module. */
class AttemptFailed extends Error {
  constructor(readonly failure: Failure) {
    super("upstream attempt failed");
  }
}

const timeoutCodes = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

function classify(error: unknown): Failure | undefined {
  if (error instanceof AttemptFailed) return error.failure;
  if (error instanceof AppError) return undefined;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return undefined;
  if (timeoutCodes.has(code)) return { kind: "timeout" };
  // undici's socket errors (UND_ERR_SOCKET, UND_ERR_CLOSED…) and the system's (ECONNREFUSED, ECONNRESET, EPIPE…).
  if (code.startsWith("UND_ERR_") || /^E[A-Z]+$/.test(code) || code === "ERR_STREAM_PREMATURE_CLOSE") {
    return { kind: "connection", message: `${code}: ${(error as Error).message}` };
  }
  return undefined;
}

const isRetryable = (failure: Failure) => failure.kind !== "status" || failure.status === 429 || failure.status >= 500;

const abortError = (signal: AbortSignal): unknown =>
  signal.reason ?? new DOMException("This operation was aborted", "AbortError");

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function header(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `retry-after-ms` (OpenAI's), else `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(
  headers: Dispatcher.ResponseData["headers"],
  now: number = Date.now(),
): number | undefined {
  const milliseconds = Number.parseFloat(header(headers, "retry-after-ms") ?? "");
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const retryAfter = header(headers, "retry-after")?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function createOpenAIProvider(options: OpenAIProviderOptions): Provider {
  const {
    apiKey,
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

  const authorization = `Bearer ${apiKey}`;
  const jsonHeaders = { authorization, "content-type": "application/json", accept: "application/json" };
  const streamHeaders = { authorization, "content-type": "application/json", accept: "text/event-stream" };

  /** The upstream's own words, minus our key should it ever echo it. */
  const redact = (text: string) => (apiKey ? text.replaceAll(apiKey, "[redacted]") : text);

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
      const parsed: unknown = JSON.parse(text);
      const error = isRecord(parsed) ? parsed.error : undefined;
      if (isRecord(error) && typeof error.message === "string") message = error.message;
      else if (typeof error === "string") message = error;
      if (isRecord(error) && typeof error.param === "string") param = error.param;
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

  function toAppError(failure: Failure, attempts: number): AppError {
    const tries = `${attempts} attempt${attempts === 1 ? "" : "s"}`;
    switch (failure.kind) {
      case "timeout":
        return new AppError("upstream_timeout", `the upstream sent nothing for ${timeoutMs} ms (${tries})`);
      case "connection":
        return new AppError("upstream_error", `could not reach the upstream after ${tries}: ${failure.message}`);
      case "status": {
        const { status, message, param } = failure;
        const withParam = param === undefined ? {} : { param };
        if (status === 400 || status === 422) return new AppError("invalid_request", message, withParam);
        if (status === 404) return new AppError("not_found", message, withParam);
        if (status === 413) return new AppError("payload_too_large", message, withParam);
        if (status === 401 || status === 403) {
          return new AppError("upstream_error", `the upstream refused the service's credentials (${status})`);
        }
        const retryAfterSeconds =
          failure.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(failure.retryAfterMs / 1000));
        const after = isRetryable(failure) ? ` after ${tries}` : "";
        return new AppError("upstream_error", `upstream answered ${status}${after}: ${message}`, {
          ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        });
      }
    }
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
      if (!isRetryable(failure) || retries >= maxRetries) throw toAppError(failure, retries + 1);
      const retryAfterMs = failure.kind === "status" ? failure.retryAfterMs : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > retryAfterCapMs) {
        // Waiting that long would hold the client past any sensible deadline: fail now and pass the hint on.
        const error = toAppError(failure, retries + 1);
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

  async function requestJson<T>(
    method: "GET" | "POST",
    route: string,
    payload: string | undefined,
    callOptions: CallOptions | undefined,
  ): Promise<CallOutcome<T>> {
    const call = callSignal(callOptions);
    try {
      return await withRetries(
        async () => {
          const response = await send(method, route, payload, jsonHeaders, call.signal);
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
  }

  return {
    name: "openai",

    chatCompletion(body, callOptions) {
      // A streaming flag here would get SSE back; this call wants one JSON answer.
      const plain =
        body.stream !== undefined || body.stream_options !== undefined
          ? { ...body, stream: undefined, stream_options: undefined }
          : body;
      return requestJson<ChatCompletion>("POST", "/chat/completions", JSON.stringify(plain), callOptions);
    },

    embeddings(body: EmbeddingRequest, callOptions?: CallOptions) {
      return requestJson<EmbeddingResponse>("POST", "/embeddings", JSON.stringify(body), callOptions);
    },

    async listModels(callOptions?: CallOptions) {
      return (await requestJson<ModelList>("GET", "/models", undefined, callOptions)).value;
    },

    async *chatCompletionStream(body: ChatCompletionRequest, callOptions?: CallOptions) {
      const call = callSignal(callOptions);
      const { signal } = call;
      const streamOptions = isRecord(body.stream_options) ? body.stream_options : {};
      const payload = JSON.stringify({
        ...body,
        stream: true,
        stream_options: { ...streamOptions, include_usage: true },
      });

      // Open the stream and read up to its first event inside the retry loop: until then a retry is invisible.
      const openStream = async () => {
        const response = await send("POST", "/chat/completions", payload, streamHeaders, signal);
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
          if (event.value === "[DONE]") {
            finished = true;
            break;
          }
          yield parseChunk(event.value);
        }
        if (!finished) throw new AppError("upstream_error", "the upstream closed the stream before [DONE]");
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

function parseChunk(data: string): ChatCompletionChunk {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new AppError("upstream_error", "the upstream sent invalid JSON in the stream");
  }
  if (isRecord(parsed) && parsed.error !== undefined && parsed.choices === undefined) {
    const error = parsed.error;
    const message = isRecord(error) && typeof error.message === "string" ? error.message : "unknown error";
    throw new AppError("upstream_error", `the upstream reported an error mid-stream: ${message}`);
  }
  return parsed as ChatCompletionChunk;
}

/**
 * The `data` of each server-sent event, as the bytes arrive (never the whole body at once). Comments and other
 * fields (`event:`, `id:`, `retry:`) are skipped; multi-line data is joined with newlines, as the SSE spec says.
 */
async function* readSseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    let start = 0;
    for (let newline = buffer.indexOf("\n"); newline !== -1; newline = buffer.indexOf("\n", start)) {
      let line = buffer.slice(start, newline);
      start = newline + 1;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (data.length > 0) yield data.join("\n");
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.charCodeAt(5) === 32 ? 6 : 5));
      }
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer.startsWith("data:")) data.push(buffer.slice(buffer.charCodeAt(5) === 32 ? 6 : 5));
  if (data.length > 0) yield data.join("\n");
}
