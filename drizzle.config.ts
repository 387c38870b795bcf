import { defineConfig } from "drizzle-kit";

// `npx drizzle-kit generate --name <what-changed>` writes a new forward-only migration from src/db/schema.ts.
// No database credentials: generation works from the schema and the committed snapshots alone.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./src/db/migrations",
});
