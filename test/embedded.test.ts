import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { loadConfig } from "../src/config.ts";
import { startService } from "../src/start-service.ts";
import { createLogger } from "../src/observability/logger.ts";
import { createTestPglite } from "./helpers/databases.ts";

/** The embedded defaults a newcomer gets: PGlite on disk, the memory cache, the built-in mock provider. */
describe("embedded defaults (PGlite, memory cache, mock provider)", () => {
  test("first start creates an admin key, serves every type, and keeps requests across a restart", async () => {
    const dir = await createTestPglite();
    const env = { PORT: "0", DATA_DIR: dir.dataDir, LOG_LEVEL: "info" };
    let logText = "";
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logText += String(chunk);
        done();
      },
    });

    // Capture what the first start prints: the key goes to stdout, never through the logger.
    let printed = "";
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      printed += String(chunk);
      return true;
    }) as typeof process.stdout.write;
    let first: Awaited<ReturnType<typeof startService>>;
    try {
      first = await startService(loadConfig(env), { logger: createLogger("info", sink) });
    } finally {
      process.stdout.write = write;
    }

    try {
      const key = /(arh_[0-9A-Za-z]{40})/.exec(printed)?.[1];
      assert.ok(key, `the first start printed a key: ${printed}`);
      assert.ok(printed.includes(`curl -s ${first.url}/requests`), "with a ready-to-paste curl example");
      assert.ok(!logText.includes(key), "the key is not in the log");
      assert.match(logText, /MOCK provider/);
      assert.match(logText, /REDIS_URL is unset/);

      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(first.url + path, {
          method,
          headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
        return { status: response.status, headers: response.headers, body: await response.json() };
      };

      const ids: string[] = [];
      for (const body of [
        { type: "chat", input: "hi" },
        { type: "summarize", input: "A text." },
        { type: "translate", input: "Hello", options: { target_language: "fr" } },
        { type: "classify", input: "great", options: { labels: ["good", "bad"] } },
        {
          type: "extract",
          input: "Bob is 7",
          options: { schema: { type: "object", properties: { age: { type: "integer" } }, required: ["age"] } },
        },
        { type: "embed", input: "v" },
      ]) {
        const answer = await call("POST", "/requests", body);
        assert.equal(answer.status, 201, JSON.stringify(answer.body));
        assert.equal(answer.body.provider, "mock");
        ids.push(answer.body.id);
      }
      const repeat = await call("POST", "/requests", { type: "summarize", input: "A text." });
      assert.equal(repeat.headers.get("x-cache"), "hit", "the memory cache answers repeats");
      ids.push(repeat.body.id);

      // A second start on the same directory: no new admin, the same key, every request still there.
      await first.close();
      printed = "";
      process.stdout.write = ((chunk: string | Uint8Array) => {
        printed += String(chunk);
        return true;
      }) as typeof process.stdout.write;
      try {
        first = await startService(loadConfig(env), { logger: createLogger("silent") });
      } finally {
        process.stdout.write = write;
      }
      assert.ok(!printed.includes("arh_"), "no second admin key on restart");
      const list = await call("GET", "/requests?limit=100");
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.data.map((r: { id: string }) => r.id),
        [...ids].reverse(),
      );
      const users = await call("GET", "/admin/users");
      assert.equal(users.status, 200, "the printed key is an admin key");
      assert.equal(users.body.data[0].role, "admin");
    } finally {
      await first.close();
      await dir.close();
    }
  });

  test("health, readiness, the OpenAPI document and the docs are public; the document lists every route", async () => {
    const dir = await createTestPglite();
    const service = await startService(
      loadConfig({ PORT: "0", DATA_DIR: dir.dataDir, ADMIN_API_KEY: "admin-key-for-this-test-0123456789" }),
      {
        logger: createLogger("silent"),
      },
    );
    try {
      const health = await fetch(`${service.url}/health`);
      assert.equal(health.status, 200);
      const ready = await fetch(`${service.url}/ready`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: "ready", checks: { database: "ok" } });
      const docs = await fetch(`${service.url}/docs`);
      assert.equal(docs.status, 200);
      assert.match(await docs.text(), /swagger/i);

      const openapi = await fetch(`${service.url}/openapi.json`);
      assert.equal(openapi.status, 200);
      const document = (await openapi.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.match(document.openapi, /^3\.1/);
      const expected: Array<[string, string]> = [
        ["/requests", "post"],
        ["/requests", "get"],
        ["/requests/{id}", "get"],
        ["/requests/{id}", "delete"],
        ["/admin/users", "post"],
        ["/admin/users", "get"],
        ["/admin/users/{id}", "get"],
        ["/admin/users/{id}", "patch"],
        ["/admin/users/{id}/keys", "post"],
        ["/admin/users/{id}/keys", "get"],
        ["/admin/keys/{id}", "delete"],
        ["/health", "get"],
        ["/ready", "get"],
        ["/metrics", "get"],
      ];
      for (const [path, method] of expected)
        assert.ok(document.paths[path]?.[method], `${method} ${path} is documented`);
      const body = JSON.stringify(document.paths["/requests"]?.post);
      assert.ok(body.includes("#/components/schemas/CreateRequest"), "POST /requests takes a CreateRequest");
      const createRequest = JSON.stringify(
        (document as unknown as { components: { schemas: Record<string, unknown> } }).components.schemas.CreateRequest,
      );
      for (const word of ["summarize", "target_language", "labels", "schema", "length"]) {
        assert.ok(createRequest.includes(word), `CreateRequest documents ${word}`);
      }

      // Once the database is gone, readiness says so.
      await service.services.database.close();
      const notReady = await fetch(`${service.url}/ready`);
      assert.equal(notReady.status, 503);
    } finally {
      await service.close().catch(() => {});
      await dir.close();
    }
  });
});
