// Runs the test suite with node's own test runner: `npm test` for everything, `npm test -- test/x.test.ts` for some.
// The runner's closing summary (pass, fail, skipped) is the count of what ran.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";

const given = process.argv.slice(2);
const files = given.length
  ? given
  : readdirSync("test", { recursive: true })
      .map(String)
      .filter((name) => name.endsWith(".test.ts"))
      .sort()
      .map((name) => `test/${name}`);

const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-reporter=spec", ...files],
  { stdio: "inherit", env: { ...process.env, NODE_ENV: "test" } },
);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
