/**
 * A Redis Cluster of the test's own: three masters on free loopback ports (each with its cluster bus on another free
 * port), joined by `redis-cli --cluster create`, nothing saved. Managed Redis often runs this way, and a script whose
 * keys span hash slots fails there (CROSSSLOT), which a single server never shows. The shared server on 6379 is never
 * touched.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { exitOf, freePort, keepLines, onProcessExit, pollUntil } from "./processes.ts";

const run = promisify(execFile);
const readyTimeoutMs = 20_000;

export interface ThrowawayRedisCluster {
  /** `127.0.0.1:<port>,…`: the value of REDIS_CLUSTER_NODES. */
  readonly nodes: string;
  readonly ports: number[];
  /** Stops every node and removes their directories. Idempotent. */
  close(): Promise<void>;
  /** What the nodes printed, for a failure message. */
  output(): string[];
}

export async function startThrowawayRedisCluster(masters = 3): Promise<ThrowawayRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), "arh-redis-cluster-"));
  const lines: string[] = [];
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const kill = () => {
    for (const child of children) child.kill("SIGKILL");
  };
  const unregister = onProcessExit(kill);

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      kill();
      await Promise.all(children.map((child) => exitOf(child)));
      await rm(dir, { recursive: true, force: true });
      unregister();
    })();
    return closed;
  };

  try {
    for (let index = 0; index < masters; index++) {
      const port = await uniqueFreePort(ports);
      const busPort = await uniqueFreePort([...ports, port]);
      ports.push(port);
      const child = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--cluster-port",
          String(busPort),
          "--bind",
          "127.0.0.1",
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          "2000",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      children.push(child);
      keepLines(child.stdout, lines);
      keepLines(child.stderr, lines);
    }
    for (const port of ports) {
      await pollUntil(
        async () => (await cli(port, "PING").catch(() => "")) === "PONG",
        readyTimeoutMs,
        () => `redis-server on port ${port} did not answer PING:\n${lines.slice(-20).join("\n")}`,
      );
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((port) => `127.0.0.1:${port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    // Every node must agree the slots are covered before a client is pointed at it.
    for (const port of ports) {
      await pollUntil(
        async () => (await cli(port, "CLUSTER", "INFO").catch(() => "")).includes("cluster_state:ok"),
        readyTimeoutMs,
        () => `the cluster node on port ${port} did not reach cluster_state:ok:\n${lines.slice(-20).join("\n")}`,
      );
    }
  } catch (error) {
    await close();
    throw error;
  }

  return {
    nodes: ports.map((port) => `127.0.0.1:${port}`).join(","),
    ports: [...ports],
    close,
    output: () => [...lines],
  };
}

async function cli(port: number, ...command: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...command]);
  return stdout.trim();
}

async function uniqueFreePort(taken: number[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port !== 6379 && !taken.includes(port)) return port;
  }
}
