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

// A file whose tests are done exits even if something it started still holds the event loop (a client retrying a
// server the file has stopped), and a file that runs past five minutes fails by name (the longest takes ~30 s):
// either way the run ends with the culprit reported instead of hanging until CI gives up.
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-concurrency=2",
    "--test-force-exit",
    "--test-timeout=300000",
    "--test-reporter=spec",
    ...files,
  ],
  { stdio: "inherit", env: { ...process.env, NODE_ENV: "test" } },
);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
