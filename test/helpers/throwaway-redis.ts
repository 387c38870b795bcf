/**
 * A Redis server of the test's own, on a free port, for tests that take Redis away: `stop()` kills it the way a
 * crash does, `start()` brings it back on the same port (empty: nothing is saved), `close()` removes it. The shared
 * server on 6379 is never touched.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exitOf, freePort, keepLines, onProcessExit, pollUntil } from "./processes.ts";

export interface ThrowawayRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL, as a crash or an OOM kill would) and waits until it is gone. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty) and waits until it answers PING. A no-op while it runs. */
  start(): Promise<void>;
  /**
   * SIGSTOP: the server keeps its connections and accepts new ones, but answers nothing (a hung or partitioned
   * Redis, which fails no command on its own). `thaw()` (SIGCONT) lets it go on; `stop()` and `close()` thaw first.
   */
  freeze(): void;
  thaw(): void;
  /** Stops it and removes its directory. Idempotent. */
  close(): Promise<void>;
  /** What the server printed, for a failure message. */
  output(): string[];
}

const readyTimeoutMs = 10_000;

export async function startThrowawayRedis(): Promise<ThrowawayRedis> {
  const port = await freePort();
  if (port === 6379) throw new Error("refusing to run a throwaway Redis on the shared server's port");
  const dir = await mkdtemp(join(tmpdir(), "arh-redis-"));
  const lines: string[] = [];
  let child: ChildProcess | undefined;
  const unregister = onProcessExit(() => {
    child?.kill("SIGCONT");
    child?.kill("SIGKILL");
  });

  async function start(): Promise<void> {
    if (isRunning()) return;
    const started = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        dir,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    started.once("error", (error) => lines.push(`spawn error: ${error.message}`));
    if (started.pid === undefined) throw new Error("could not spawn redis-server (is it on the PATH?)");
    child = started;
    keepLines(started.stdout, lines);
    keepLines(started.stderr, lines);
    await pollUntil(
      async () => {
        if (started.exitCode !== null || started.signalCode !== null) {
          throw new Error(`redis-server exited at start:\n${lines.slice(-20).join("\n")}`);
        }
        return ping(port);
      },
      readyTimeoutMs,
      () => `redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms:\n${lines.join("\n")}`,
    );
  }

  const isRunning = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  async function stop(): Promise<void> {
    const running = child;
    if (!running || running.pid === undefined) return;
    running.kill("SIGCONT");
    running.kill("SIGKILL");
    await exitOf(running);
  }

  await start().catch(async (error: unknown) => {
    await stop();
    await rm(dir, { recursive: true, force: true });
    unregister();
    throw error;
  });

  let closed: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    freeze() {
      if (isRunning()) child?.kill("SIGSTOP");
    },
    thaw() {
      if (isRunning()) child?.kill("SIGCONT");
    },
    close() {
      closed ??= (async () => {
        await stop();
        await rm(dir, { recursive: true, force: true });
        unregister();
      })();
      return closed;
    },
    output: () => [...lines],
  };
}

/** True when a Redis on `port` answers PING with PONG within a second. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}
