/**
 * Queued work at scale: POST /requests/batch with N requests (default 1,000) against the mock upstream (a process of
 * its own, on a real socket), then the time until GET /batches/{id} says completed. Reports requests per second from
 * acceptance to the last completion, and how long the acceptance itself took. The service runs in this process
 * (startService) on a throwaway PostgreSQL database and the local Redis, or with --embedded on PGlite and memory.
 *
 *   npx tsx bench/batch.ts [--size 1000] [--concurrency 4,16] [--embedded] [--latency-ms 0]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.ts";
import { startService } from "../src/start-service.ts";
import { createThrowawayDatabase, spawnNode, waitForLine } from "./processes.ts";

const { values: options } = parseArgs({
  options: {
    size: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "4,16" },
    embedded: { type: "boolean", default: false },
    "latency-ms": { type: "string", default: "0" },
    "database-admin-url": { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
    "redis-url": { type: "string", default: "redis://127.0.0.1:6379" },
  },
});
const size = Number(options.size);
const log = (line: string) => process.stdout.write(`${line}\n`);

async function runOnce(concurrency: number, mockUrl: string) {
  const adminKey = `bench-admin-${randomBytes(24).toString("hex")}`;
  const throwaway = options.embedded ? undefined : await createThrowawayDatabase(options["database-admin-url"]);
  const dataDir = options.embedded ? await mkdtemp(join(tmpdir(), "arh-bench-batch-")) : undefined;
  const service = await startService(
    loadConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      ADMIN_API_KEY: adminKey,
      LOG_LEVEL: "error",
      OPENAI_API_KEY: "sk-bench",
      OPENAI_BASE_URL: mockUrl,
      QUEUE_CONCURRENCY: String(concurrency),
      ...(throwaway ? { DATABASE_URL: throwaway.url, REDIS_URL: options["redis-url"] } : { DATA_DIR: dataDir ?? "" }),
    }),
  );
  try {
    const call = async (method: string, path: string, key: string, body?: unknown) => {
      const response = await fetch(service.url + path, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const user = await call("POST", "/admin/users", adminKey, { email: `batch-${Date.now()}@bench.local` });
    const key = String((await call("POST", `/admin/users/${String(user.id)}/keys`, adminKey, {})).key);
    const requests = Array.from({ length: size }, (_, i) => ({
      type: "summarize",
      input: `Document ${i}: ${randomBytes(32).toString("hex")}`,
    }));

    const started = performance.now();
    const batch = await call("POST", "/requests/batch", key, { requests });
    const acceptedMs = performance.now() - started;
    if (typeof batch.id !== "string") throw new Error(`the batch was refused: ${JSON.stringify(batch)}`);
    for (;;) {
      const state = await call("GET", `/batches/${batch.id}`, key);
      if (state.status === "completed") {
        const counts = state.counts as Record<string, number>;
        const totalMs = performance.now() - started;
        return { concurrency, acceptedMs, totalMs, completed: counts.completed ?? 0, failed: counts.failed ?? 0 };
      }
      await delay(25);
    }
  } finally {
    await service.close();
    await throwaway?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  const mock = spawnNode(
    "mock upstream",
    ["src/mock-upstream/main.ts", "--port", "0", "--api-key", "sk-bench", "--latency-ms", options["latency-ms"]],
    { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
  );
  try {
    const mockUrl = (await waitForLine(mock, /listening on (http:\/\/\S+\/v1)\b/, 30_000))[1] ?? "";
    log(
      `batch of ${size} summarize requests, ${options.embedded ? "PGlite + memory" : "PostgreSQL + Redis"}, ` +
        `mock upstream latency ${options["latency-ms"]} ms`,
    );
    log("concurrency  accepted in  all done in   req/s  completed  failed");
    for (const concurrency of options.concurrency.split(",").map(Number)) {
      const result = await runOnce(concurrency, mockUrl);
      log(
        `${String(concurrency).padStart(11)}  ${`${result.acceptedMs.toFixed(0)} ms`.padStart(11)}  ` +
          `${`${(result.totalMs / 1000).toFixed(2)} s`.padStart(11)}  ${((size / result.totalMs) * 1000).toFixed(0).padStart(6)}  ` +
          `${String(result.completed).padStart(9)}  ${String(result.failed).padStart(6)}`,
      );
    }
  } finally {
    await mock.stop();
  }
}

await main();
