/**
 * An OpenAI-compatible HTTP server for tests and benchmarks: deterministic answers (providers/mock-model/), OpenAI's wire
 * format and error bodies, and fault knobs (latency, errors, 429 with Retry-After, hangs, broken streams) that tests
 * set in-process or, from another process, through the `/__faults` control endpoint.
 *
 * Plain `node:http` on purpose: the mock is the benchmark's baseline, so its hot path is parse, generate (cached),
 * stringify, write.
 */
import { isRecord } from "../is-record.ts";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { ChatCompletionRequest, EmbeddingRequest } from "../providers/provider.ts";
import { tokenizerModule } from "../tokens.ts";
import {
  createChatCompletion,
  createChatCompletionChunks,
  promptTokensByBytes,
  withPromptTokens,
} from "../providers/mock-model/chat.ts";
import { createEmbeddings, listMockModels } from "../providers/mock-model/embeddings.ts";
import { validateChatCompletionRequest, validateEmbeddingRequest } from "../providers/mock-model/validate.ts";

/** One scripted answer, consumed by the next `/v1` request before any random fault is drawn. */
export interface FailSpec {
  /** Answer this status with OpenAI's error body (e.g. 500, 503, 429, 400, 404). */
  status?: number;
  /** With 429 (or any status): sends `Retry-After` (whole seconds, rounded up) and `retry-after-ms`. */
  retryAfterSeconds?: number;
  /** Sends only `retry-after-ms` (plus `Retry-After` rounded up): lets tests honour a Retry-After quickly. */
  retryAfterMs?: number;
  /** Overrides the error message; `param` and `code` fill the error body's fields. */
  message?: string;
  param?: string;
  code?: string;
  /** Accept the request and never answer it. */
  hang?: boolean;
  /** Destroy the connection without answering (a connection error for the client). */
  drop?: boolean;
  /** Stream this many chunks, then destroy the connection without `[DONE]` (stream requests only). */
  brokenStreamAfterChunks?: number;
}

export interface MockFaults {
  /** Delay before the answer's headers, on every `/v1` request. Default 0. */
  latencyMs: number;
  /** Delay between two stream chunks. Default 0 (the whole stream is written at once). */
  streamChunkDelayMs: number;
  /** Share of requests (0..1) answered 500. Default 0. */
  errorRate: number;
  /** Share of requests (0..1) answered 429 with Retry-After. Default 0. */
  rateLimitRate: number;
  /** The Retry-After of random 429s (and of a scripted 429 that names none). Default 1. */
  retryAfterSeconds: number;
  /** Accept every request and never answer. Default false. */
  hang: boolean;
  /** Every stream sends this many chunks, then the connection is destroyed without `[DONE]`. Default null (off). */
  brokenStreamAfterChunks: number | null;
  /** Scripted answers, one consumed per `/v1` request, before the random faults. Default []. */
  failNext: FailSpec[];
  /**
   * Count chat prompt tokens as one per this many UTF-8 bytes (plus OpenAI's per-message framing), the way an
   * upstream with a tokenizer of its own disagrees with OpenAI's. Default null: OpenAI's tokenizer (o200k).
   */
  bytesPerToken: number | null;
}

export interface MockUpstreamOptions extends Partial<MockFaults> {
  /** Default 0: any free port (read it from `port` or `url`). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, only `Authorization: Bearer <apiKey>` is accepted; otherwise any non-empty bearer token. */
  apiKey?: string;
  /** Hears every parsed `/v1` chat completion body: lets a test see what the gateway sent. */
  onChatRequest?: (body: ChatCompletionRequest) => void;
}

export interface MockUpstreamStats {
  /** `/v1` requests by route (`"POST /v1/chat/completions"`, …; anything else under `"other"`). */
  requests: Record<string, number>;
  totalRequests: number;
  /** Chat completions asked with `stream: true`. */
  streams: number;
  /** Requests whose client closed the connection before the answer (or the stream) was complete. */
  clientDisconnects: number;
  /** Requests answered with a fault (scripted or random). */
  injectedFaults: number;
  /** `/v1` requests received and not yet finished. */
  inFlight: number;
  /** TCP connections open right now (keep-alive ones included). */
  openConnections: number;
}

export interface MockUpstream {
  /** Base URL ending in `/v1`, e.g. `http://127.0.0.1:40123/v1`. */
  readonly url: string;
  readonly port: number;
  stats(): MockUpstreamStats;
  faults(): MockFaults;
  /** Merges into the current faults (`failNext` is replaced, not appended). Throws on an unknown or mistyped knob. */
  setFaults(partial: Partial<MockFaults>): void;
  /** Back to the faults the server was started with. */
  resetFaults(): void;
  resetStats(): void;
  /** Stops listening and cuts every connection (hung requests included). */
  close(): Promise<void>;
}

const defaultFaults: MockFaults = {
  latencyMs: 0,
  streamChunkDelayMs: 0,
  errorRate: 0,
  rateLimitRate: 0,
  retryAfterSeconds: 1,
  hang: false,
  brokenStreamAfterChunks: null,
  failNext: [],
  bytesPerToken: null,
};

const isNonNegative = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= 0;

/** Checks a partial set of knobs (from a test or from `POST /__faults`) and returns it merged into `current`. */
function mergeFaults(current: MockFaults, partial: unknown): MockFaults {
  if (!isRecord(partial)) throw new TypeError("faults must be a JSON object");
  const next: MockFaults = { ...current, failNext: [...current.failNext] };
  for (const [key, value] of Object.entries(partial)) {
    switch (key) {
      case "latencyMs":
      case "streamChunkDelayMs":
      case "retryAfterSeconds":
        if (!isNonNegative(value)) throw new TypeError(`${key} must be a number >= 0`);
        next[key] = value;
        break;
      case "errorRate":
      case "rateLimitRate":
        if (!isNonNegative(value) || value > 1) throw new TypeError(`${key} must be a number from 0 to 1`);
        next[key] = value;
        break;
      case "hang":
        if (typeof value !== "boolean") throw new TypeError("hang must be a boolean");
        next.hang = value;
        break;
      case "brokenStreamAfterChunks":
        if (value !== null && !(Number.isInteger(value) && isNonNegative(value))) {
          throw new TypeError("brokenStreamAfterChunks must be an integer >= 0 or null");
        }
        next.brokenStreamAfterChunks = value as number | null;
        break;
      case "bytesPerToken":
        if (value !== null && !(typeof value === "number" && Number.isFinite(value) && value > 0)) {
          throw new TypeError("bytesPerToken must be a number > 0 or null");
        }
        next.bytesPerToken = value as number | null;
        break;
      case "failNext":
        if (!Array.isArray(value) || !value.every(isRecord))
          throw new TypeError("failNext must be an array of objects");
        next.failNext = value.map((spec) => ({ ...spec }) as FailSpec);
        break;
      default:
        throw new TypeError(`unknown fault knob: ${key}`);
    }
  }
  return next;
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI-shaped error bodies

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const errorBody = (message: string, type: string, param: string | null = null, code: string | null = null) =>
  ({ error: { message, type, param, code } }) satisfies ErrorBody;

/** OpenAI's own wording per status, so clients see what they would see from the real API. */
function faultBody(status: number, spec: FailSpec): ErrorBody {
  const param = spec.param ?? null;
  const code = spec.code ?? null;
  if (status === 429) {
    return errorBody(
      spec.message ?? "Rate limit reached for requests (mock upstream). Please try again later.",
      "requests",
      param,
      spec.code ?? "rate_limit_exceeded",
    );
  }
  if (status === 401)
    return errorBody(
      spec.message ?? "Incorrect API key provided.",
      "invalid_request_error",
      param,
      spec.code ?? "invalid_api_key",
    );
  if (status === 503) {
    return errorBody(
      spec.message ?? "The engine is currently overloaded, please try again later.",
      "server_error",
      param,
      code,
    );
  }
  if (status >= 500) {
    return errorBody(
      spec.message ?? "The server had an error while processing your request. Sorry about that!",
      "server_error",
      param,
      code,
    );
  }
  return errorBody(
    spec.message ?? `Invalid request (mock upstream fault ${status}).`,
    "invalid_request_error",
    param,
    code,
  );
}

/**
 * `Retry-After` in whole seconds (what most servers send); `retry-after-ms` only when a test asked for a
 * millisecond value, so both header forms get exercised.
 */
function retryAfterHeaders(fault: FailSpec, defaultSeconds: number): Record<string, string> {
  if (fault.retryAfterMs !== undefined) {
    return {
      "retry-after-ms": String(fault.retryAfterMs),
      "retry-after": String(Math.ceil(fault.retryAfterMs / 1000)),
    };
  }
  const seconds = fault.retryAfterSeconds ?? (fault.status === 429 ? defaultSeconds : undefined);
  return seconds === undefined ? {} : { "retry-after": String(Math.ceil(seconds)) };
}

// ---------------------------------------------------------------------------------------------------------------

type Route = "chat" | "embeddings" | "models" | "model";

function matchRoute(method: string, path: string): { route: Route; id?: string } | "method" | undefined {
  if (path === "/v1/chat/completions") return method === "POST" ? { route: "chat" } : "method";
  if (path === "/v1/embeddings") return method === "POST" ? { route: "embeddings" } : "method";
  if (path === "/v1/models") return method === "GET" ? { route: "models" } : "method";
  if (path.startsWith("/v1/models/")) {
    return method === "GET" ? { route: "model", id: decodeURIComponent(path.slice("/v1/models/".length)) } : "method";
  }
  return undefined;
}

const maxBodyBytes = 16 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBodyBytes) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > maxBodyBytes ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
    // A client that leaves mid-body: settle anyway (the answer goes nowhere; the close handler counts it).
    req.on("close", () => resolve(""));
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Resolves false instead of throwing when the client went away during the wait. */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (ms <= 0) return !signal.aborted;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

const sse = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;

/** Embedding answers carry no id or timestamp, so identical bodies get the identical serialized answer. */
const embeddingCache = new Map<string, string>();
const embeddingCacheSize = 256;

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  // Every answer is counted with the tokenizer: load it before listening, not in the first request's time.
  tokenizerModule();
  const { port: requestedPort = 0, host = "127.0.0.1", apiKey, onChatRequest, ...initialKnobs } = options;
  const initialFaults = mergeFaults(defaultFaults, initialKnobs);
  let faults = mergeFaults(initialFaults, {});
  let closing = false;
  let requestCounter = 0;
  let openConnections = 0;
  let inFlight = 0;
  let stats = emptyStats();
  const modelsBody = JSON.stringify(listMockModels());

  function emptyStats() {
    return {
      requests: {} as Record<string, number>,
      totalRequests: 0,
      streams: 0,
      clientDisconnects: 0,
      injectedFaults: 0,
    };
  }

  /** The fault for this request: the scripted queue first, then `hang`, then the random rates. */
  function drawFault(): FailSpec | undefined {
    const scripted = faults.failNext.shift();
    if (scripted) return scripted;
    if (faults.hang) return { hang: true };
    if (faults.errorRate > 0 && Math.random() < faults.errorRate) return { status: 500 };
    if (faults.rateLimitRate > 0 && Math.random() < faults.rateLimitRate) return { status: 429 };
    return undefined;
  }

  function authorize(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    if (!header?.startsWith("Bearer ")) return false;
    const token = header.slice("Bearer ".length).trim();
    return apiKey === undefined ? token.length > 0 : token === apiKey;
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === "GET" && path === "/__stats") return sendJson(res, 200, snapshot());
    if (req.method === "GET" && path === "/__faults") return sendJson(res, 200, faults);
    if (req.method === "POST" && path === "/__reset") {
      faults = mergeFaults(initialFaults, {});
      stats = emptyStats();
      return sendJson(res, 200, { ok: true });
    }
    if (req.method === "POST" && path === "/__faults") {
      const text = (await readBody(req)) ?? "";
      try {
        faults = mergeFaults(faults, text === "" ? {} : JSON.parse(text));
      } catch (error) {
        return sendJson(res, 400, errorBody(String((error as Error).message), "invalid_request_error"));
      }
      return sendJson(res, 200, faults);
    }
    sendJson(res, 404, errorBody(`Invalid URL (${req.method} ${path})`, "invalid_request_error"));
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? "GET";
    const match = matchRoute(method, path);
    const routeKey =
      typeof match === "object" ? `${method} ${match.route === "model" ? "/v1/models/{id}" : path}` : "other";
    stats.requests[routeKey] = (stats.requests[routeKey] ?? 0) + 1;
    stats.totalRequests++;
    inFlight++;

    // The client closing before the answer is complete is what the gateway's cancellation tests look for.
    const clientGone = new AbortController();
    let selfDestroyed = false;
    res.once("close", () => {
      inFlight--;
      if (!res.writableFinished && !selfDestroyed && !closing) {
        stats.clientDisconnects++;
        clientGone.abort();
      }
    });
    const destroy = () => {
      selfDestroyed = true;
      res.socket?.destroy();
    };

    const text = method === "POST" ? await readBody(req) : "";
    const headers = { "x-request-id": `req_mock${(++requestCounter).toString(36)}` };
    if (!authorize(req)) {
      return sendJson(
        res,
        401,
        errorBody(
          "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
          "invalid_request_error",
          null,
          "invalid_api_key",
        ),
        headers,
      );
    }
    if (match === undefined) {
      return sendJson(res, 404, errorBody(`Invalid URL (${method} ${path})`, "invalid_request_error"), headers);
    }
    if (match === "method") {
      return sendJson(
        res,
        405,
        errorBody(`Invalid method for URL (${method} ${path})`, "invalid_request_error"),
        headers,
      );
    }
    if (text === undefined) {
      return sendJson(res, 413, errorBody("Request body too large.", "invalid_request_error"), headers);
    }

    if (!(await sleep(faults.latencyMs, clientGone.signal))) return;

    const fault = drawFault();
    if (fault) {
      stats.injectedFaults++;
      if (fault.drop) return destroy();
      if (fault.hang) return; // never answered; the close handler counts the client giving up
      if (fault.status !== undefined) {
        const retryHeaders = retryAfterHeaders(fault, faults.retryAfterSeconds);
        return sendJson(res, fault.status, faultBody(fault.status, fault), { ...headers, ...retryHeaders });
      }
    }

    let body: unknown;
    if (method === "POST") {
      try {
        body = JSON.parse(text);
      } catch {
        return sendJson(
          res,
          400,
          errorBody(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            "invalid_request_error",
          ),
          headers,
        );
      }
    }

    switch (match.route) {
      case "models":
        return sendJson(res, 200, modelsBody, headers);
      case "model": {
        const model = listMockModels().data.find((item) => item.id === match.id);
        if (!model) {
          return sendJson(
            res,
            404,
            errorBody(`The model '${match.id}' does not exist`, "invalid_request_error", "model", "model_not_found"),
            headers,
          );
        }
        return sendJson(res, 200, model, headers);
      }
      case "embeddings": {
        let answer = embeddingCache.get(text);
        if (answer === undefined) {
          const invalid = validateEmbeddingRequest(body);
          if (invalid)
            return sendJson(res, 400, errorBody(invalid.message, "invalid_request_error", invalid.param), headers);
          answer = JSON.stringify(createEmbeddings(body as EmbeddingRequest));
          if (embeddingCache.size >= embeddingCacheSize) {
            const oldest = embeddingCache.keys().next().value;
            if (oldest !== undefined) embeddingCache.delete(oldest);
          }
          embeddingCache.set(text, answer);
        }
        return sendJson(res, 200, answer, headers);
      }
      case "chat": {
        const invalid = validateChatCompletionRequest(body);
        if (invalid)
          return sendJson(res, 400, errorBody(invalid.message, "invalid_request_error", invalid.param), headers);
        const request = body as ChatCompletionRequest;
        onChatRequest?.(request);
        const recount = faults.bytesPerToken;
        if (request.stream !== true) {
          const completion = createChatCompletion(request);
          if (recount !== null && completion.usage) {
            completion.usage = withPromptTokens(completion.usage, promptTokensByBytes(request, recount));
          }
          return sendJson(res, 200, completion, headers);
        }
        stats.streams++;
        const streamOptions = request.stream_options;
        const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true;
        const brokenAfter = fault?.brokenStreamAfterChunks ?? faults.brokenStreamAfterChunks;
        const chunks = createChatCompletionChunks(request, { includeUsage });
        const last = chunks.at(-1);
        if (recount !== null && last?.usage)
          last.usage = withPromptTokens(last.usage, promptTokensByBytes(request, recount));
        return writeStream(res, chunks, {
          headers,
          chunkDelayMs: faults.streamChunkDelayMs,
          brokenAfter,
          signal: clientGone.signal,
          destroy,
        });
      }
    }
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    const handler = path.startsWith("/__") ? handleControl(req, res, path) : handleApi(req, res, path);
    handler.catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, 500, errorBody(`mock upstream failure: ${(error as Error).message}`, "server_error"));
    });
  });
  // Longer than undici's default so an idle pooled connection is never closed under a request in flight.
  server.keepAliveTimeout = 30_000;
  server.on("connection", (socket: Socket) => {
    openConnections++;
    socket.once("close", () => openConnections--);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(requestedPort, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;

  function snapshot(): MockUpstreamStats {
    return { ...stats, requests: { ...stats.requests }, inFlight, openConnections };
  }

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    stats: snapshot,
    faults: () => mergeFaults(faults, {}),
    setFaults(partial) {
      faults = mergeFaults(faults, partial);
    },
    resetFaults() {
      faults = mergeFaults(initialFaults, {});
    },
    resetStats() {
      stats = emptyStats();
    },
    close() {
      closing = true;
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

interface StreamPlan {
  headers: Record<string, string>;
  chunkDelayMs: number;
  brokenAfter: number | null | undefined;
  signal: AbortSignal;
  destroy: () => void;
}

async function writeStream(res: ServerResponse, chunks: readonly unknown[], plan: StreamPlan): Promise<void> {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    ...plan.headers,
  });
  const broken = plan.brokenAfter !== null && plan.brokenAfter !== undefined;
  if (plan.chunkDelayMs <= 0 && !broken) {
    // The fast path: one write for the whole stream.
    res.end(`${chunks.map(sse).join("")}data: [DONE]\n\n`);
    return;
  }
  const limit = broken ? Math.min(plan.brokenAfter as number, chunks.length) : chunks.length;
  if (limit === 0) res.flushHeaders();
  for (let i = 0; i < limit; i++) {
    if (i > 0 && !(await sleep(plan.chunkDelayMs, plan.signal))) return;
    // Wait for the bytes to reach the socket, so a broken stream really delivers its N chunks first.
    await new Promise<void>((resolve) => res.write(sse(chunks[i]), () => resolve()));
    if (plan.signal.aborted) return;
  }
  if (broken) {
    await new Promise((resolve) => setImmediate(resolve));
    plan.destroy();
    return;
  }
  if (!(await sleep(plan.chunkDelayMs, plan.signal))) return;
  res.end("data: [DONE]\n\n");
}
