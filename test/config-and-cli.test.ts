import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { ConfigError, loadConfig } from "../src/config.ts";
import { createTestPostgres, type TestPostgres } from "./helpers/databases.ts";

const run = promisify(execFile);

describe("configuration", () => {
  test("defaults are the contract's", () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 8080);
    assert.equal(config.HOST, "127.0.0.1");
    assert.equal(config.DATA_DIR, "./data");
    assert.equal(config.OPENAI_BASE_URL, "https://api.openai.com/v1");
    assert.equal(config.CACHE_TTL_SECONDS, 3600);
    assert.equal(config.UPSTREAM_TIMEOUT_MS, 120_000);
    assert.equal(config.UPSTREAM_MAX_RETRIES, 2);
    assert.equal(config.LOG_LEVEL, "info");
    assert.equal(config.DATABASE_URL, undefined);
    assert.equal(config.REDIS_URL, undefined);
    assert.equal(config.REDIS_CLUSTER_NODES, undefined);
  });

  test("REDIS_CLUSTER_NODES is a list of seed nodes", () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: " 10.0.0.1:7000, rediss://u:p@cache.example.com:6380 ," });
    assert.deepEqual(config.REDIS_CLUSTER_NODES, ["10.0.0.1:7000", "rediss://u:p@cache.example.com:6380"]);
  });

  for (const [name, value] of [
    ["DATABASE_URL", "mysql://x"],
    ["DATABASE_URL", "not a url"],
    ["REDIS_URL", "http://localhost"],
    ["REDIS_CLUSTER_NODES", "127.0.0.1"],
    ["REDIS_CLUSTER_NODES", "127.0.0.1:7000,http://x:7001"],
    ["CACHE_TTL_SECONDS", "-5"],
    ["PORT", "99999"],
    ["UPSTREAM_TIMEOUT_MS", "soon"],
    ["OPENAI_BASE_URL", "ftp://x"],
    ["LOG_LEVEL", "loud"],
  ] as const) {
    test(`${name}=${value} stops the start with a line naming ${name}`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => error instanceof ConfigError && error.message.startsWith(`invalid configuration: ${name}=`),
      );
    });
  }

  test("the service refuses to start on bad configuration, naming the variable", async () => {
    const failed = await run("npx", ["tsx", "src/cli.ts", "serve"], {
      env: { ...process.env, CACHE_TTL_SECONDS: "-1", PORT: "0" },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    assert.ok(failed, "the start failed");
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /CACHE_TTL_SECONDS/);
    assert.equal(failed.stderr.trim().split("\n").length, 1, "one clear line");
  });
});

describe("the command line", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await createTestPostgres();
  });
  after(() => pg.close());

  const cli = (...args: string[]) =>
    run("npx", ["tsx", "src/cli.ts", ...args], { env: { ...process.env, DATABASE_URL: pg.url, LOG_LEVEL: "silent" } });

  test("migrate is idempotent; users and keys are created, listed and revoked", async () => {
    assert.match((await cli("migrate")).stdout, /migrations applied \(postgres\)/);
    assert.match((await cli("migrate")).stdout, /migrations applied/);

    const user = JSON.parse((await cli("users", "create", "--email", "cli@example.com", "--name", "Cli")).stdout);
    assert.match(user.id, /^usr_/);
    assert.equal(user.email, "cli@example.com");
    assert.match((await cli("users", "list")).stdout, /cli@example\.com/);

    const created = await cli("keys", "create", "--user", "cli@example.com", "--name", "laptop");
    const key = JSON.parse(created.stdout);
    assert.match(key.key, /^arh_[0-9A-Za-z]{40}$/);
    assert.equal(key.prefix, key.key.slice(0, 12));
    assert.match(created.stderr, /shown only now/);

    const listed = (await cli("keys", "list", "--user", user.id)).stdout;
    assert.ok(listed.includes(key.id));
    assert.ok(!listed.includes(key.key), "the list never shows the key");

    const revoked = JSON.parse((await cli("keys", "revoke", key.id)).stdout);
    assert.ok(revoked.revoked_at);

    const duplicate = await cli("users", "create", "--email", "cli@example.com").catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((duplicate as { code: number }).code, 2);
    assert.match((duplicate as { stderr: string }).stderr, /exists already/);
  });
});
