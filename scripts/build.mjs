// Compiles src/ to dist/ (what `npm start` runs): tsc with the project's settings, then the SQL migrations beside
// the code that reads them. Incremental: a build with nothing changed takes about a second.
import { spawnSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
if (result.status !== 0) {
  console.error("build failed: see the TypeScript errors above");
  process.exit(result.status ?? 1);
}
rmSync("dist/db/migrations", { recursive: true, force: true });
cpSync("src/db/migrations", "dist/db/migrations", { recursive: true });
