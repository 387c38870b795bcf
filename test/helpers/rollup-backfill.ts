import { readFileSync } from "node:fs";
import { join } from "node:path";
import { migrationsFolder } from "../../src/db/client.ts";
import type { Database } from "../../src/db/client.ts";
import { rollupTables } from "../../src/db/usage-rollups.ts";

/**
 * The backfill of migration 0006 (between its `-- backfill:start` and `-- backfill:end` markers), statement by
 * statement: what fills the usage rollups from requests stored without them. Tests and the dashboard benchmark run
 * the migration's own SQL, not a copy of it.
 */
export function rollupBackfillStatements(): string[] {
  const migration = readFileSync(join(migrationsFolder, "0006_usage_rollups.sql"), "utf8");
  const start = migration.indexOf("-- backfill:start");
  const end = migration.indexOf("-- backfill:end");
  if (start < 0 || end < start) throw new Error("migration 0006 has no backfill markers");
  return migration
    .slice(start, end)
    .split("--> statement-breakpoint")
    .map((statement) => statement.trim())
    .filter((statement) => statement !== "");
}

/**
 * Empties every rollup table and the queue of batches to fold, then fills the rollups again from the requests table
 * with the migration's backfill.
 */
export async function rebuildRollups(database: Database): Promise<void> {
  const tables = [...Object.values(rollupTables).map((table) => table.name), "usage_rollup_queue"];
  await database.writer.query({ text: `truncate ${tables.join(", ")}`, values: [] });
  for (const statement of rollupBackfillStatements()) await database.writer.query({ text: statement, values: [] });
}
