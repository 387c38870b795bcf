import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { loadConfig } from "../../src/config.ts";
import { startService, type RunningService } from "../../src/start-service.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { startMockUpstream, type MockUpstream } from "../../src/mock-upstream/server.ts";
import { createTestPglite, createTestPostgres, type StorageBackend } from "./databases.ts";

export interface TestServiceOptions {
  backend?: StorageBackend;
  /** A PostgreSQL database of the test's own (e.g. a throwaway cluster); overrides `backend`, never dropped here. */
  databaseUrl?: string;
  /** Use the shared Redis at 127.0.0.1:6379 for the cache (default true). */
  redis?: boolean;
  /** "upstream": the mock OpenAI server on a real socket (default); "builtin": the in-process mock provider. */
  provider?: "upstream" | "builtin";
  env?: Record<string, string>;
  /** Reuse a mock upstream started by the test. */
  upstream?: MockUpstream;
  /** How long `close()` waits for requests in flight (startService's default otherwise). */
  shutdownGraceMs?: number;
}

export interface TestService {
  url: string;
  adminKey: string;
  upstream: MockUpstream | undefined;
  running: RunningService;
  /** Log lines the service wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Raw log text, for "never appears in the log" checks. */
  logText(): string;
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  /** A new user and one API key for it, made through the admin API. */
  createUser(email?: string): Promise<{ id: string; key: string; keyId: string }>;
  close(): Promise<void>;
}

export interface CallOptions {
  key?: string;
  body?: unknown;
  /** Sent as is (no JSON encoding). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answer fields freely and assert on them.
  body: any;
  text: string;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const backend = options.backend ?? "postgres";
  const cleanups: Array<() => Promise<unknown>> = [];
  const env: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    ADMIN_API_KEY: `admin-${randomBytes(16).toString("hex")}`,
    LOG_LEVEL: "info",
    // Every test service answers 127.0.0.1 and shares the Redis failure counter of that address: tests that send
    // bad keys on purpose must not block the ones running beside them. test/security.test.ts sets its own limit.
    AUTH_FAILURE_LIMIT: "10000",
    ...options.env,
  };

  if (options.databaseUrl !== undefined) {
    env.DATABASE_URL = options.databaseUrl;
  } else if (backend === "postgres") {
    const pg = await createTestPostgres();
    cleanups.push(() => pg.close());
    env.DATABASE_URL = pg.url;
  } else {
    const dir = await createTestPglite();
    cleanups.push(() => dir.close());
    env.DATA_DIR = dir.dataDir;
  }
  if (options.redis !== false) env.REDIS_URL ??= "redis://127.0.0.1:6379";

  let upstream = options.upstream;
  if ((options.provider ?? "upstream") === "upstream") {
    if (!upstream) {
      const started = await startMockUpstream({ port: 0, apiKey: "sk-test-upstream" });
      upstream = started;
      cleanups.push(() => started.close());
    }
    env.OPENAI_API_KEY ??= "sk-test-upstream";
    env.OPENAI_BASE_URL ??= upstream.url;
  }

  let logText = "";
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      const text = String(chunk);
      logText += text;
      for (const line of text.split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });

  const config = loadConfig(env);
  const running = await startService(config, {
    logger: createLogger(config.LOG_LEVEL, sink),
    shutdownGraceMs: options.shutdownGraceMs,
  });
  const adminKey = config.ADMIN_API_KEY!;

  async function call(method: string, path: string, callOptions: CallOptions = {}): Promise<CallResult> {
    const headers: Record<string, string> = { ...callOptions.headers };
    if (callOptions.key) headers.authorization = `Bearer ${callOptions.key}`;
    let body: string | undefined = callOptions.rawBody;
    if (callOptions.body !== undefined) {
      body = JSON.stringify(callOptions.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(running.url + path, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: the text is the body
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  return {
    url: running.url,
    adminKey,
    upstream,
    running,
    logs,
    logText: () => logText,
    call,
    async createUser(email) {
      const user = await call("POST", "/admin/users", {
        key: adminKey,
        body: { email: email ?? `user-${randomBytes(6).toString("hex")}@example.com` },
      });
      if (user.status !== 201) throw new Error(`creating a user failed: ${user.status} ${user.text}`);
      const key = await call("POST", `/admin/users/${user.body.id}/keys`, { key: adminKey, body: {} });
      if (key.status !== 201) throw new Error(`creating a key failed: ${key.status} ${key.text}`);
      return { id: user.body.id, key: key.body.key, keyId: key.body.id };
    },
    async close() {
      await running.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };
}
