import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { startMockUpstream, type MockUpstream } from "../src/mock-upstream/server.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { freePort } from "./helpers/processes.ts";
import { type ServiceProcess, startServiceProcess } from "./helpers/service-process.ts";

const run = promisify(execFile);

/** WORKERS=N: N processes behind one port, sharing PostgreSQL and Redis. */
describe("WORKERS=2", () => {
  let pg: TestPostgres;
  let upstream: MockUpstream;
  let service: ServiceProcess;
  const adminKey = "admin-key-for-the-workers-test-0123";

  before(async () => {
    pg = await createTestPostgres();
    upstream = await startMockUpstream({ port: 0, apiKey: "sk-workers" });
    service = await startServiceProcess({
      env: {
        PORT: String(await freePort()),
        WORKERS: "2",
        DATABASE_URL: pg.url,
        REDIS_URL: "redis://127.0.0.1:6379",
        OPENAI_API_KEY: "sk-workers",
        OPENAI_BASE_URL: upstream.url,
        ADMIN_API_KEY: adminKey,
      },
    });
    await service.waitUntilReady();
  });
  after(async () => {
    await service?.kill();
    await upstream?.close();
    await pg?.close();
  });

  test("two worker processes serve one port; SIGTERM stops them all with exit 0", async () => {
    const { stdout } = await run("ps", ["--ppid", String(service.pid), "-o", "args="]);
    const workers = stdout.split("\n").filter((line) => line.includes("src/cli.ts serve"));
    assert.equal(workers.length, 2, `the primary runs two workers: ${stdout}`);

    const user = await fetch(`${service.url}/admin/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ email: `workers-${Date.now()}@example.com` }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const key = await fetch(`${service.url}/admin/users/${user.id}/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: "{}",
    }).then((r) => r.json() as Promise<{ key: string }>);

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${service.url}/requests`, {
          method: "POST",
          headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json", connection: "close" },
          body: JSON.stringify({ type: "summarize", input: `worker ${i}` }),
        }),
      ),
    );
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([201]));
    const list = await fetch(`${service.url}/requests?limit=100`, { headers: { authorization: `Bearer ${key.key}` } });
    assert.equal(((await list.json()) as { data: unknown[] }).data.length, 20, "every answer is stored");

    service.signal("SIGTERM");
    const exit = await service.exited;
    assert.equal(exit.code, 0);
  });
});

describe("WORKERS without PostgreSQL and Redis", () => {
  test("refuses to start, naming the variable", async () => {
    const failed = await run("node", ["--import", "tsx", "src/cli.ts", "serve"], {
      env: { ...process.env, WORKERS: "2", DATABASE_URL: "", REDIS_URL: "", PORT: "0" },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.ok(failed);
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /WORKERS=2/);
  });
});
