import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort } from "./helpers/processes.ts";
import { exitWithin, type ServiceProcess, startServiceProcess } from "./helpers/service-process.ts";

/**
 * `npm start` as the README gives it, with nothing configured: it compiles the service to dist/ and runs that, on
 * PGlite (in its worker thread, from the compiled files) and the built-in mock model.
 */
describe("npm start", () => {
  let dataDir: string;
  let service: ServiceProcess;
  let key: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "arh-start-"));
    service = await startServiceProcess({
      via: "npm start",
      env: { PORT: String(await freePort()), DATA_DIR: dataDir },
      // A cold build (tsc) comes first.
      startTimeoutMs: 90_000,
    });
    await service.waitUntilReady();
    // The first start on an empty database prints the admin's key once, as the README shows.
    const printed = service
      .lines()
      .map((line) => /^\s+(arh_\S+)\s*$/.exec(line)?.[1])
      .find(Boolean);
    assert.ok(printed, `the first start prints an API key:\n${service.tail()}`);
    key = printed;
  });
  after(async () => {
    await service?.kill();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("serves the compiled build, and SIGTERM sent to npm drains the service and ends it", async () => {
    const answer = await fetch(`${service.url}/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "summarize", input: "npm start runs the compiled service on PGlite." }),
    });
    assert.equal(answer.status, 201, await answer.clone().text());
    const record = (await answer.json()) as { id: string; provider: string; status: string };
    assert.equal(record.provider, "mock");
    const stored = await fetch(`${service.url}/requests/${record.id}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(stored.status, 200, "the record was committed to PGlite");

    // npm runs the service through a shell; the signal must reach the service, not just end npm.
    service.signal("SIGTERM");
    const exit = await exitWithin(service, 15_000);
    assert.deepEqual(exit, { code: 0, signal: null }, `npm exits 0 once the service has drained:\n${service.tail()}`);
    assert.ok(
      service.logs().some((line) => String(line.msg).startsWith("shut down: requests drained")),
      `the service itself shut down gracefully:\n${service.tail()}`,
    );
    await assert.rejects(fetch(`${service.url}/health`), "nothing answers on the port any more");
  });
});
