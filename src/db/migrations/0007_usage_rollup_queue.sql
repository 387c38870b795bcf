CREATE TABLE "usage_rollup_queue" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"created_ats" timestamp with time zone[] NOT NULL,
	"user_ids" text[] NOT NULL,
	"models" text[] NOT NULL,
	"providers" text[] NOT NULL,
	"types" text[] NOT NULL,
	"statuses" text[] NOT NULL,
	"cached_flags" boolean[] NOT NULL,
	"prompt_token_counts" integer[] NOT NULL,
	"completion_token_counts" integer[] NOT NULL,
	"total_token_counts" integer[] NOT NULL,
	"costs_usd" double precision[] NOT NULL,
	"latencies_ms" integer[] NOT NULL
);
--> statement-breakpoint
-- Adds up to max_batches queued batches (oldest first) to the rollups and deletes them, in the caller's transaction:
-- the sums and the deletion commit together, so a batch is counted once even when the folder dies half-way. The
-- advisory lock makes folders of several instances take turns (the one rollups_add call then locks rollup rows in
-- key order, as the old in-statement upkeep did, so folders and older instances never deadlock). Returns the number
-- of batches taken: max_batches means there may be more.
CREATE FUNCTION usage_rollups_fold(max_batches integer) RETURNS integer
  LANGUAGE plpgsql
  AS $$
DECLARE
  taken integer;
  added integer;
BEGIN
  PERFORM pg_advisory_xact_lock(4207311953);
  -- One aggregate row over every request of the batches taken: one call of usage_rollups_add for all of them.
  WITH batches AS (
    DELETE FROM usage_rollup_queue
    WHERE id IN (SELECT id FROM usage_rollup_queue ORDER BY id LIMIT max_batches)
    RETURNING *
  )
  SELECT count(DISTINCT b.id),
    usage_rollups_add(array_agg(r.created_at), array_agg(r.user_id), array_agg(r.model), array_agg(r.provider),
      array_agg(r.type), array_agg(r.status), array_agg(r.cached), array_agg(r.prompt_tokens),
      array_agg(r.completion_tokens), array_agg(r.total_tokens), array_agg(r.cost_usd), array_agg(r.latency_ms))
  INTO taken, added
  FROM batches b
  CROSS JOIN LATERAL unnest(b.created_ats, b.user_ids, b.models, b.providers, b.types, b.statuses, b.cached_flags,
    b.prompt_token_counts, b.completion_token_counts, b.total_token_counts, b.costs_usd, b.latencies_ms)
    AS r(created_at, user_id, model, provider, type, status, cached, prompt_tokens, completion_tokens, total_tokens,
      cost_usd, latency_ms);
  RETURN taken;
END
$$;
