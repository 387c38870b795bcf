-- Usage sums per user and date range (GET /me/usage, the monthly budget's seed) read only this index:
-- the INCLUDE columns make it an index-only scan, so a long history is never read from the table itself.
-- drizzle's schema builder cannot express INCLUDE, hence a custom migration (src/db/usage.ts documents the query).
CREATE INDEX IF NOT EXISTS "requests_user_usage_idx" ON "requests" USING btree ("user_id", "created_at")
  INCLUDE ("model", "cached", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd");
