/**
 * The service as a real child process (`node --import tsx src/cli.ts serve`, or `npm start` as a user runs it),
 * for what only a process can show: what SIGTERM and SIGKILL do to the answers in flight and to what is stored.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { exitOf, keepLines, onProcessExit, pollUntil } from "./processes.ts";

/** The repository root: the child runs from there so `src/…` and `node_modules` resolve. */
const repoRoot = new URL("../..", import.meta.url).pathname;

export interface ServiceProcessOptions {
  /** The service's configuration; PORT defaults to 0 (the URL is read from the "listening" log line). */
  env: Record<string, string>;
  /** How long to wait for the "listening" line. Default 30 s (tsx compiles the sources at start). */
  startTimeoutMs?: number;
  /** `npm start`: the build, then the compiled service, under npm (its pid is npm's). Default: the sources under tsx. */
  via?: "tsx" | "npm start";
  /** Sees each line of output (stdout or stderr) as it arrives, before the start has finished too. */
  onLine?: (line: string) => void;
}

export interface ServiceProcess {
  readonly pid: number;
  /** `http://127.0.0.1:<port>`, from the service's "listening" log line. */
  readonly url: string;
  /** Resolves once the process has exited, with its exit code (null when a signal ended it) and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every line the process wrote, stdout and stderr interleaved as they arrived. */
  lines(): string[];
  /** The JSON log lines, parsed. */
  logs(): Array<Record<string, unknown>>;
  /** Polls `GET /ready` until it answers 200; throws (with the output) if the process exits or time runs out. */
  waitUntilReady(timeoutMs?: number): Promise<void>;
  /** Sends a signal to the process started (the service, or npm), not to its group. */
  signal(signal: "SIGTERM" | "SIGINT" | "SIGKILL"): void;
  /** SIGKILL if still running, then waits for the exit. Idempotent; for cleanup. */
  kill(): Promise<void>;
  /** The last lines of output, for a failure message. */
  tail(count?: number): string;
}

export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "info",
    // Every test service shares the Redis failure counter of 127.0.0.1; tests of that limit set their own.
    AUTH_FAILURE_LIMIT: "10000",
    ...options.env,
  };
  const [command, args] =
    options.via === "npm start"
      ? ["npm", ["start", "--silent"]]
      : [process.execPath, ["--import", "tsx", "src/cli.ts", "serve"]];
  const child: ChildProcess = spawn(command, args, {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: cleanup can take down anything it started, and a Ctrl-C reaches the test runner only.
    detached: true,
  });
  const spawnErrors: string[] = [];
  child.once("error", (error) => spawnErrors.push(error.message));
  if (child.pid === undefined) throw new Error(`could not spawn the service process ${spawnErrors.join("; ")}`);
  const pid = child.pid;
  const unregister = onProcessExit(() => killGroup(pid));

  const lines: string[] = [];
  keepLines(child.stdout, lines, undefined, options.onLine);
  keepLines(child.stderr, lines, undefined, options.onLine);
  const exited = exitOf(child);
  exited.then(unregister, unregister);

  const tail = (count = 40) => lines.slice(-count).join("\n");
  const logs = () => {
    const parsed: Array<Record<string, unknown>> = [];
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    return parsed;
  };
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;

  const kill = async () => {
    if (!hasExited()) killGroup(pid);
    await exited;
  };

  let url: string | undefined;
  try {
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    await pollUntil(
      async () => {
        const listening = logs().find((line) => line.msg === "ai-request-handler listening");
        if (typeof listening?.url === "string") url = listening.url;
        if (url) return true;
        if (hasExited()) throw new Error(`the service exited before it was listening:\n${tail()}`);
        return false;
      },
      timeoutMs,
      () => `the service was not listening within ${timeoutMs} ms:\n${tail()}`,
    );
  } catch (error) {
    await kill();
    throw error;
  }
  const baseUrl = url!;

  return {
    pid,
    url: baseUrl,
    exited,
    lines: () => [...lines],
    logs,
    tail,
    async waitUntilReady(timeoutMs = 15_000) {
      let last = "no answer";
      await pollUntil(
        async () => {
          if (hasExited()) throw new Error(`the service exited before it was ready:\n${tail()}`);
          try {
            const response = await fetch(`${baseUrl}/ready`, { signal: AbortSignal.timeout(3_000) });
            last = `${response.status} ${await response.text()}`;
            return response.status === 200;
          } catch (error) {
            last = error instanceof Error ? error.message : String(error);
            return false;
          }
        },
        timeoutMs,
        () => `${baseUrl}/ready was not 200 within ${timeoutMs} ms (last: ${last}):\n${tail()}`,
        100,
      );
    },
    signal(name) {
      if (!hasExited()) process.kill(pid, name);
    },
    kill,
  };
}

/** SIGKILL to the child's whole group (it leads it), ignoring a group that is gone already. */
function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, "SIGKILL");
      return;
    } catch {
      // gone already, or not a group: try the next
    }
  }
}

/** Waits for an exit, or gives up after `timeoutMs` with undefined (the caller decides what a hang means). */
export async function exitWithin(
  service: ServiceProcess,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  const timer = new AbortController();
  const timeout = delay(timeoutMs, undefined, { signal: timer.signal }).catch(() => undefined);
  try {
    return await Promise.race([service.exited, timeout]);
  } finally {
    timer.abort();
  }
}
