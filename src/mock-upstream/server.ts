/**
 * An OpenAI-compatible HTTP server for tests and benchmarks: deterministic answers (providers/mock-model/), OpenAI's wire
 * format and error bodies, and fault knobs (latency, errors, 429 with Retry-After, hangs, broken streams) that tests
 * set in-process or, from another process, through the `/__faults` control endpoint. On the same port it speaks
 * Anthropic's Messages API too (anthropic.ts), with the same answers and knobs.
 *
 * Plain `node:http` on purpose: the mock is the benchmark's baseline, so its hot path is parse, generate (cached),
 * stringify, write.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { ChatCompletionRequest } from "../providers/provider.ts";
import { tokenizerModule } from "../tokens.ts";
import { listMockModels } from "../providers/mock-model/embeddings.ts";
import { PromptCache } from "../providers/mock-model/messages-prompt.ts";
import { handleAnthropic, isAnthropicRequest } from "./anthropic.ts";
import { errorBody, faultBody, invalidApiKeyBody, invalidJsonBody, retryAfterHeaders } from "./error-bodies.ts";
import { defaultFaults, drawFault, type MockFaults, mergeFaults } from "./faults.ts";
import { readBody, sendJson, sleep } from "./http-io.ts";
import { answerChat, answerEmbeddings, answerModel, matchRoute } from "./routes.ts";

// The fault knobs' types, for importers of the server (they were declared here before faults.ts).
export type { FailSpec, MockFaults } from "./faults.ts";

export interface MockUpstreamOptions extends Partial<MockFaults> {
  /** Default 0: any free port (read it from `port` or `url`). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * When set, only `Authorization: Bearer <apiKey>` is accepted (on Anthropic's routes `x-api-key: <apiKey>` too);
   * otherwise any non-empty key.
   */
  apiKey?: string;
  /** The header that carries the key as it is (Azure's `api-key`); default `Authorization: Bearer`. */
  apiKeyHeader?: string;
  /** Hears every parsed `/v1` chat completion body: lets a test see what the gateway sent. */
  onChatRequest?: (body: ChatCompletionRequest) => void;
  /** Hears every `/v1/messages` body that is JSON, before it is validated: lets a test see what the gateway sent. */
  onMessagesRequest?: (body: unknown) => void;
}

export interface MockUpstreamStats {
  /** `/v1` requests by route (`"POST /v1/chat/completions"`, `"POST /v1/messages"`, …; else `"other"`). */
  requests: Record<string, number>;
  totalRequests: number;
  /** Chat completions and messages asked with `stream: true`. */
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

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  // Every answer is counted with the tokenizer: load it before listening, not in the first request's time.
  tokenizerModule();
  const {
    port: requestedPort = 0,
    host = "127.0.0.1",
    apiKey,
    apiKeyHeader,
    onChatRequest,
    onMessagesRequest,
    ...initialKnobs
  } = options;
  const initialFaults = mergeFaults(defaultFaults, initialKnobs);
  let faults = mergeFaults(initialFaults, {});
  let closing = false;
  let requestCounter = 0;
  let openConnections = 0;
  let inFlight = 0;
  let stats = emptyStats();
  const modelsBody = JSON.stringify(listMockModels());
  // The prompts Anthropic's routes have cached (prompt caching's usage).
  const promptCache = new PromptCache();

  function emptyStats() {
    return {
      requests: {} as Record<string, number>,
      totalRequests: 0,
      streams: 0,
      clientDisconnects: 0,
      injectedFaults: 0,
    };
  }

  function authorize(req: IncomingMessage): boolean {
    if (apiKeyHeader !== undefined) {
      const given = req.headers[apiKeyHeader.toLowerCase()];
      return typeof given === "string" && (apiKey === undefined ? given.length > 0 : given === apiKey);
    }
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
      promptCache.clear();
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
    const requestNumber = ++requestCounter;
    if (isAnthropicRequest(path, typeof match === "object" ? match.route : undefined, req.headers)) {
      return handleAnthropic(req, res, {
        match,
        text,
        requestNumber,
        apiKey,
        faults: () => faults,
        drawFault() {
          const fault = drawFault(faults);
          if (fault) stats.injectedFaults++;
          return fault;
        },
        onMessagesRequest,
        countStream: () => {
          stats.streams++;
        },
        promptCache,
        signal: clientGone.signal,
        destroy,
      });
    }
    const headers = { "x-request-id": `req_mock${requestNumber.toString(36)}` };
    if (!authorize(req)) {
      return sendJson(res, 401, invalidApiKeyBody, headers);
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

    const fault = drawFault(faults);
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
        return sendJson(res, 400, invalidJsonBody, headers);
      }
    }

    switch (match.route) {
      case "models":
        return sendJson(res, 200, modelsBody, headers);
      case "model":
        return answerModel(res, match.id, headers);
      case "embeddings":
        return answerEmbeddings(res, text, body, headers);
      case "chat":
        return answerChat(res, body, {
          headers,
          fault,
          faults: () => faults,
          onChatRequest,
          countStream: () => {
            stats.streams++;
          },
          signal: clientGone.signal,
          destroy,
        });
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
