// Runs the test suite with node's own test runner: `npm test` for everything, `npm test -- test/x.test.ts` (or a
// folder, like `test/unit`, the fast tier: no sockets, no database) for some.
// The runner's closing summary (pass, fail, skipped) is the count of what ran.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";

const testsIn = (folder) =>
  readdirSync(folder, { recursive: true })
    .map(String)
    .filter((name) => name.endsWith(".test.ts"))
    .sort()
    .map((name) => `${folder}/${name}`);

const given = process.argv.slice(2);
const files = (given.length ? given : ["test"]).flatMap((path) =>
  statSync(path).isDirectory() ? testsIn(path) : [path],
);

const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-reporter=spec", ...files],
  { stdio: "inherit", env: { ...process.env, NODE_ENV: "test" } },
);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
