/**
 * The first start on an empty database prints the admin's key on stdout. A deployment script waits for the port
 * (`/health`, or the "listening" line) and then reads the output: the key must be there by then.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";
import { freePort, pollUntil } from "./helpers/processes.ts";
import { type ServiceProcess, startServiceProcess } from "./helpers/service-process.ts";

const keyLine = /^\s+(arh_[0-9A-Za-z]{40})\s*$/;
const isListeningLine = (line: string) => line.includes('"msg":"ai-request-handler listening"');

describe("first start: the admin key is printed before the port opens", () => {
  let database: TestPostgres;
  const services: ServiceProcess[] = [];
  before(async () => {
    database = await createTestPostgres();
  });
  after(async () => {
    for (const service of services) await service.kill();
    await database?.close();
  });

  /** The key printed, and where its line and the "listening" line are in the output. */
  function printed(lines: readonly string[]) {
    const keyAt = lines.findIndex((line) => keyLine.test(line));
    return {
      key: keyAt >= 0 ? keyLine.exec(lines[keyAt]!)?.[1] : undefined,
      keyAt,
      listeningAt: lines.findIndex(isListeningLine),
    };
  }

  test("a fixed PORT: the key and its curl line are out before /health first answers", {
    timeout: 60_000,
  }, async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // The output as it arrives, so that it can be read at the moment /health first answers.
    const seen: string[] = [];
    let stopPolling = false;
    let seenWhenHealthy: string[] | undefined;
    // The script of the bug report: poll /health from the moment the process starts, then read the output.
    const healthy = pollUntil(
      async () => {
        if (stopPolling) return true;
        try {
          const response = await fetch(`${url}/health`);
          await response.arrayBuffer();
          if (response.status !== 200) return false;
          seenWhenHealthy = [...seen];
          return true;
        } catch {
          return false; // not listening yet
        }
      },
      60_000,
      () => "/health never answered",
      5,
    );
    const service = await startServiceProcess({
      env: { DATABASE_URL: database.url, PORT: String(port) },
      onLine: (line) => seen.push(line),
    }).catch((error: unknown) => {
      stopPolling = true;
      throw error;
    });
    services.push(service);
    await healthy;
    assert.ok(seenWhenHealthy, "/health answered");

    const atHealth = printed(seenWhenHealthy);
    t.diagnostic(
      `key line ${atHealth.keyAt}, listening line ${atHealth.listeningAt} of the output at /health's answer`,
    );
    assert.ok(atHealth.key, `the key was printed before /health first answered:\n${seenWhenHealthy.join("\n")}`);

    const all = service.lines();
    const { key, keyAt, listeningAt } = printed(all);
    assert.ok(keyAt >= 0 && listeningAt >= 0, service.tail());
    assert.ok(keyAt < listeningAt, `the key comes before the "listening" line:\n${service.tail()}`);
    const curlAt = all.findIndex((line) => line.includes(`curl -s ${url}/requests -H "Authorization: Bearer ${key}"`));
    assert.ok(
      curlAt >= 0 && curlAt < listeningAt,
      `the curl line names the real address, before it opens:\n${service.tail()}`,
    );

    // And it is a working admin key.
    const users = await fetch(`${url}/admin/users`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(users.status, 200, await users.text());
  });

  test("PORT=0: the key before the port opens, the curl line with the port chosen once it is known", {
    timeout: 60_000,
  }, async () => {
    // The database of the test above has its admin already: a first start needs an empty one.
    const empty = await createTestPostgres();
    try {
      const service = await startServiceProcess({ env: { DATABASE_URL: empty.url, PORT: "0" } });
      services.push(service);
      const all = service.lines();
      const { key, keyAt, listeningAt } = printed(all);
      assert.ok(key, service.tail());
      assert.ok(keyAt < listeningAt, `the key comes before the "listening" line:\n${service.tail()}`);
      assert.ok(
        all.some((line) => line.includes(`curl -s ${service.url}/requests -H "Authorization: Bearer ${key}"`)),
        `a curl line names the address the service listens on (${service.url}):\n${service.tail()}`,
      );
      await service.kill();
    } finally {
      await empty.close();
    }
  });
});
