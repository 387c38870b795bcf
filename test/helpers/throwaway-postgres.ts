/**
 * A PostgreSQL cluster of the test's own: `initdb` into a fresh temporary directory, `pg_ctl` on a free port with its
 * socket in that directory, so the shared server (5432, /var/lib/postgresql) is never touched. `stop()` is an
 * immediate shutdown (what a crash looks like to clients), `start()` brings the same cluster back, `close()` removes
 * everything. initdb takes about a second: make one per test file.
 *
 * PostgreSQL refuses to run as root; as root the binaries run as the `postgres` user (runuser), which owns the
 * directory.
 */
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, onProcessExit } from "./processes.ts";

const run = promisify(execFile);

export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth). */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl stop -m immediate`: every connection is cut at once. Idempotent. */
  stop(): Promise<void>;
  /** Starts the same cluster again (its data kept) and waits until it accepts connections. A no-op while it runs. */
  start(): Promise<void>;
  /** Stops the cluster and removes its directory. Idempotent. */
  close(): Promise<void>;
}

/** Where initdb and pg_ctl live: `PG_BIN_DIR`, else the newest /usr/lib/postgresql/<version>/bin, else the PATH. */
function binDir(): string | undefined {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((version) => existsSync(join(root, version, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const bin = binDir();
  const tool = (name: string) => (bin ? join(bin, name) : name);
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;

  const port = await freePort();
  if (port === 5432) throw new Error("refusing to run a throwaway PostgreSQL on the shared server's port");
  const dir = await mkdtemp(join(tmpdir(), "arh-pg-"));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "server.log");
  if (owner) await chown(dir, owner.uid, owner.gid);
  /** Runs a PostgreSQL tool as the cluster's owner, from inside the cluster's directory. */
  const pgTool = (name: string, args: string[]) =>
    asRoot
      ? run("runuser", ["-u", "postgres", "--", tool(name), ...args], { cwd: dir, timeout: 60_000 })
      : run(tool(name), args, { cwd: dir, timeout: 60_000 });

  let running = false;
  const stopSync = () => {
    if (running) {
      const command = asRoot ? "runuser" : tool("pg_ctl");
      const prefix = asRoot ? ["-u", "postgres", "--", tool("pg_ctl")] : [];
      spawnSync(command, [...prefix, "-D", dataDir, "-m", "immediate", "-w", "stop"], { cwd: dir, timeout: 10_000 });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const unregister = onProcessExit(stopSync);

  async function start(): Promise<void> {
    if (running) return;
    const options = `-p ${port} -k ${dir} -h 127.0.0.1 -c fsync=off -c full_page_writes=off`;
    try {
      await pgTool("pg_ctl", ["-D", dataDir, "-o", options, "-l", logFile, "-w", "-t", "30", "start"]);
    } catch (error) {
      throw new Error(`pg_ctl start failed: ${describe(error)}`);
    }
    running = true;
  }

  async function stop(): Promise<void> {
    if (!running) return;
    try {
      await pgTool("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
    } catch (error) {
      throw new Error(`pg_ctl stop failed: ${describe(error)}`);
    }
    running = false;
  }

  try {
    await pgTool("initdb", [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "--no-sync",
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
    ]).catch((error: unknown) => {
      throw new Error(`initdb failed: ${describe(error)}`);
    });
    await start();
  } catch (error) {
    stopSync();
    unregister();
    throw error;
  }

  let closed: Promise<void> | undefined;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    close() {
      closed ??= (async () => {
        await stop().catch(() => {
          // Removing the directory below is what matters; a failed stop leaves the exit hook to try again.
        });
        if (!running) {
          await rm(dir, { recursive: true, force: true });
          unregister();
        }
      })();
      return closed;
    },
  };
}

function postgresUser(): { uid: number; gid: number } {
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error("running as root, but there is no postgres user to run PostgreSQL as");
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function describe(error: unknown): string {
  if (typeof error === "object" && error !== null && "stderr" in error) {
    const stderr = String((error as { stderr: unknown }).stderr).trim();
    if (stderr) return stderr;
  }
  return error instanceof Error ? error.message : String(error);
}
