// Compiles src/ to dist/ (what `npm start` runs): tsc with the project's settings, then the SQL migrations beside
// the code that reads them, then the web dashboard (vite) into dist/dashboard. Incremental: a build with nothing
// changed takes about a second (tsc reuses its build info; the dashboard is rebuilt only when its sources changed).
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { stdio: "inherit" });
if (result.status !== 0) {
  console.error("build failed: see the TypeScript errors above");
  process.exit(result.status ?? 1);
}
rmSync("dist/db/migrations", { recursive: true, force: true });
cpSync("src/db/migrations", "dist/db/migrations", { recursive: true });

const dashboardOut = "dist/dashboard/index.html";

/** The newest modification time under a path (a file, or a folder walked recursively). */
function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((latest, name) => Math.max(latest, newest(join(path, name))), stat.mtimeMs);
}

// The dashboard's inputs: its own folder, and the installed packages it bundles.
const dashboardChanged =
  !existsSync(dashboardOut) ||
  Math.max(newest("dashboard"), newest("package-lock.json")) > statSync(dashboardOut).mtimeMs;

if (dashboardChanged) {
  try {
    const { build } = await import("vite");
    await build({ configFile: "dashboard/vite.config.ts", logLevel: "warn" });
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    console.error("build failed: the dashboard (dashboard/, built with vite) did not build; see the error above");
    process.exit(1);
  }
}
