/**
 * Small pieces the throwaway servers, the service child process and the tests share: a free port, a line-keeping
 * reader of a child's output, a bounded wait for a condition, and a last-chance cleanup that runs even when a test
 * file crashes before its `after` hooks.
 */
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/**
 * A port that was free a moment ago on 127.0.0.1, for a server a test starts later (a Redis, a PostgreSQL, a service
 * process). It is taken from below the kernel's ephemeral range (32768 and up): a port from that range can be handed
 * to some outgoing connection's local end before the server binds it, or while a test has stopped the server and
 * means to start it again on the same port.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error("no free port found between 20000 and 32000");
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Keeps the last `max` lines a child wrote on one of its streams; `onLine` sees each as it arrives. */
export function keepLines(
  stream: NodeJS.ReadableStream | null,
  into: string[],
  max = 5_000,
  onLine?: (line: string) => void,
): void {
  if (!stream) return;
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (line.trim() === "") continue;
      into.push(line);
      if (into.length > max) into.shift();
      onLine?.(line);
    }
  });
  stream.on("end", () => {
    if (partial.trim() !== "") {
      into.push(partial);
      onLine?.(partial);
    }
    partial = "";
  });
}

/** Resolves with the exit code and signal of a child (at once if it has exited already). */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/**
 * Polls `probe` until it is (or resolves) true, or throws `describe()` once `timeoutMs` has passed. Tests wait with
 * it for something to happen, rather than sleeping for a time guessed to be long enough.
 */
export async function pollUntil(
  probe: () => boolean | Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() >= deadline) throw new Error(describe());
    await delay(intervalMs);
  }
}

const lastChance = new Set<() => void>();
let hooked = false;

/**
 * Registers a synchronous cleanup for the moment this process exits, however it exits (a crash, an uncaught error, a
 * test runner that gives up): a throwaway server must never outlive its test file. Returns the unregister function,
 * called by the ordinary asynchronous cleanup once it has done the job.
 */
export function onProcessExit(cleanup: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.once("exit", () => {
      for (const run of lastChance) {
        try {
          run();
        } catch {
          // Best effort: the process is going away.
        }
      }
    });
  }
  lastChance.add(cleanup);
  return () => lastChance.delete(cleanup);
}
