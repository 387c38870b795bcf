CREATE TABLE "usage_rollups" (
	"hour" timestamp with time zone NOT NULL,
	"user_id" text NOT NULL,
	"model" text NOT NULL,
	"provider" text NOT NULL,
	"type" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL,
	CONSTRAINT "usage_rollups_pkey" PRIMARY KEY("user_id","hour","model","provider","type")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups_daily" (
	"day" timestamp with time zone NOT NULL,
	"user_id" text NOT NULL,
	"model" text NOT NULL,
	"provider" text NOT NULL,
	"type" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL,
	CONSTRAINT "usage_rollups_daily_pkey" PRIMARY KEY("user_id","day","model","provider","type")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups_everyone" (
	"hour" timestamp with time zone NOT NULL,
	"model" text NOT NULL,
	"provider" text NOT NULL,
	"type" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL,
	CONSTRAINT "usage_rollups_everyone_pkey" PRIMARY KEY("hour","model","provider","type")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups_everyone_daily" (
	"day" timestamp with time zone NOT NULL,
	"model" text NOT NULL,
	"provider" text NOT NULL,
	"type" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL,
	CONSTRAINT "usage_rollups_everyone_daily_pkey" PRIMARY KEY("day","model","provider","type")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups_totals" (
	"hour" timestamp with time zone PRIMARY KEY NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL
);
--> statement-breakpoint
CREATE TABLE "usage_rollups_user_totals" (
	"hour" timestamp with time zone NOT NULL,
	"user_id" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL,
	CONSTRAINT "usage_rollups_user_totals_pkey" PRIMARY KEY("hour","user_id")
);
--> statement-breakpoint
CREATE TABLE "usage_rollups_user_totals_daily" (
	"day" timestamp with time zone NOT NULL,
	"user_id" text NOT NULL,
	"requests" bigint NOT NULL,
	"errors" bigint NOT NULL,
	"cache_hits" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_min_ms" integer NOT NULL,
	"latency_max_ms" integer NOT NULL,
	"latency_histogram" bigint[] NOT NULL,
	CONSTRAINT "usage_rollups_user_totals_daily_pkey" PRIMARY KEY("day","user_id")
);
--> statement-breakpoint
CREATE INDEX "usage_rollups_user_totals_user_idx" ON "usage_rollups_user_totals" USING btree ("user_id","hour");--> statement-breakpoint
CREATE INDEX "usage_rollups_user_totals_daily_user_idx" ON "usage_rollups_user_totals_daily" USING btree ("user_id","day");
--> statement-breakpoint
-- The latency bucket of a request: bucket 0 is 0 ms, bucket k counts [bounds[k], bounds[k+1]) ms (1-based), in
-- third-octave steps up to 11 min (src/db/latency-histogram.ts holds the same list and explains the resolution; a
-- test checks they agree). Stored histograms are only comparable under these bounds: never change the list.
CREATE FUNCTION usage_latency_bucket(latency_ms integer) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT width_bucket(latency_ms, '{1,2,3,4,5,6,8,10,13,16,20,25,32,40,51,64,81,102,128,161,203,256,323,406,512,645,813,1024,1290,1625,2048,2580,3251,4096,5161,6502,8192,10321,13004,16384,20643,26008,32768,41285,52016,65536,82570,104032,131072,165140,208064,262144,330281,416128,524288,660561}'::integer[]) $$;
--> statement-breakpoint
-- Two latency histograms added element-wise (a missing element counts as 0), for the rollups' upserts. PL/pgSQL
-- rather than SQL: a SQL function's body is planned again in every statement that calls it, ~0.1 ms per upsert.
CREATE FUNCTION usage_histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  AS $$
DECLARE
  total bigint[] := a;
BEGIN
  FOR i IN 1 .. greatest(cardinality(a), cardinality(b)) LOOP
    total[i] := coalesce(a[i], 0) + coalesce(b[i], 0);
  END LOOP;
  RETURN total;
END
$$;
--> statement-breakpoint
-- Every batch rewrites the rows of its hour and day: room on the page keeps those updates HOT.
ALTER TABLE "usage_rollups" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "usage_rollups_daily" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "usage_rollups_everyone" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "usage_rollups_everyone_daily" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "usage_rollups_user_totals" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "usage_rollups_user_totals_daily" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "usage_rollups_totals" SET (fillfactor = 70);
--> statement-breakpoint
-- A latency histogram from (bucket, count) pairs; a bucket may come more than once.
CREATE FUNCTION usage_histogram_of(buckets integer[], counts bigint[]) RETURNS bigint[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  AS $$
DECLARE
  histogram bigint[] := array_fill(0::bigint, ARRAY[57]);
BEGIN
  FOR i IN 1 .. coalesce(cardinality(buckets), 0) LOOP
    histogram[buckets[i] + 1] := histogram[buckets[i] + 1] + counts[i];
  END LOOP;
  RETURN histogram;
END
$$;
--> statement-breakpoint
-- Adds a batch of requests just inserted (one array per column: array_agg over the INSERT's RETURNING) to every
-- rollup table. The statement that stores a batch calls it (src/db/usage-rollups.ts), so the sums commit or fail
-- with the rows they count. PL/pgSQL keeps the plan of its one statement for the session, and the calling statement
-- stays short to parse. The batch is summed once per hour, user, model, provider, type and latency bucket (`fine`),
-- and each table sums those. Each table's rows are upserted in key order: two writers lock shared rows (everyone's
-- rows of the current hour) in the same order, and wait for each other instead of deadlocking.
CREATE FUNCTION usage_rollups_add(
  created_ats timestamptz[],
  user_ids text[],
  models text[],
  providers text[],
  types text[],
  statuses text[],
  cached_flags boolean[],
  prompt_token_counts integer[],
  completion_token_counts integer[],
  total_token_counts integer[],
  costs_usd double precision[],
  latencies_ms integer[]
) RETURNS integer
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF created_ats IS NULL THEN
    RETURN 0;
  END IF;
  -- Hours and days are UTC whatever the session's TimeZone: date_trunc's third argument.
  WITH fine AS (
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, date_trunc('day', created_at, 'UTC') AS day, user_id, model,
      provider, type, usage_latency_bucket(latency_ms) AS latency_bucket,
      count(*) AS requests,
      count(*) FILTER (WHERE status = 'failed') AS errors,
      count(*) FILTER (WHERE cached) AS cache_hits,
      sum(prompt_tokens) AS prompt_tokens,
      sum(completion_tokens) AS completion_tokens,
      sum(total_tokens) AS total_tokens,
      coalesce(sum(cost_usd), 0) AS cost_usd,
      min(latency_ms) AS latency_min_ms,
      max(latency_ms) AS latency_max_ms
    FROM unnest(created_ats, user_ids, models, providers, types, statuses, cached_flags, prompt_token_counts, completion_token_counts, total_token_counts, costs_usd, latencies_ms)
      AS batch(created_at, user_id, model, provider, type, status, cached, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_ms)
    GROUP BY 1, 2, 3, 4, 5, 6, 7
  ),
  rollup_0 AS (
      INSERT INTO usage_rollups AS r (hour, user_id, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
      SELECT hour, user_id, model, provider, type,
        sum(requests),
        sum(errors),
        sum(cache_hits),
        sum(prompt_tokens),
        sum(completion_tokens),
        sum(total_tokens),
        sum(cost_usd),
        min(latency_min_ms),
        max(latency_max_ms),
        usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
      FROM fine GROUP BY hour, user_id, model, provider, type ORDER BY user_id, hour, model, provider, type
      ON CONFLICT (user_id, hour, model, provider, type) DO UPDATE SET
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        cache_hits = r.cache_hits + excluded.cache_hits,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        total_tokens = r.total_tokens + excluded.total_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram)
  ),
  rollup_1 AS (
      INSERT INTO usage_rollups_daily AS r (day, user_id, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
      SELECT day, user_id, model, provider, type,
        sum(requests),
        sum(errors),
        sum(cache_hits),
        sum(prompt_tokens),
        sum(completion_tokens),
        sum(total_tokens),
        sum(cost_usd),
        min(latency_min_ms),
        max(latency_max_ms),
        usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
      FROM fine GROUP BY day, user_id, model, provider, type ORDER BY user_id, day, model, provider, type
      ON CONFLICT (user_id, day, model, provider, type) DO UPDATE SET
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        cache_hits = r.cache_hits + excluded.cache_hits,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        total_tokens = r.total_tokens + excluded.total_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram)
  ),
  rollup_2 AS (
      INSERT INTO usage_rollups_everyone AS r (hour, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
      SELECT hour, model, provider, type,
        sum(requests),
        sum(errors),
        sum(cache_hits),
        sum(prompt_tokens),
        sum(completion_tokens),
        sum(total_tokens),
        sum(cost_usd),
        min(latency_min_ms),
        max(latency_max_ms),
        usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
      FROM fine GROUP BY hour, model, provider, type ORDER BY hour, model, provider, type
      ON CONFLICT (hour, model, provider, type) DO UPDATE SET
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        cache_hits = r.cache_hits + excluded.cache_hits,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        total_tokens = r.total_tokens + excluded.total_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram)
  ),
  rollup_3 AS (
      INSERT INTO usage_rollups_everyone_daily AS r (day, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
      SELECT day, model, provider, type,
        sum(requests),
        sum(errors),
        sum(cache_hits),
        sum(prompt_tokens),
        sum(completion_tokens),
        sum(total_tokens),
        sum(cost_usd),
        min(latency_min_ms),
        max(latency_max_ms),
        usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
      FROM fine GROUP BY day, model, provider, type ORDER BY day, model, provider, type
      ON CONFLICT (day, model, provider, type) DO UPDATE SET
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        cache_hits = r.cache_hits + excluded.cache_hits,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        total_tokens = r.total_tokens + excluded.total_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram)
  ),
  rollup_4 AS (
      INSERT INTO usage_rollups_user_totals AS r (hour, user_id, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
      SELECT hour, user_id,
        sum(requests),
        sum(errors),
        sum(cache_hits),
        sum(prompt_tokens),
        sum(completion_tokens),
        sum(total_tokens),
        sum(cost_usd),
        min(latency_min_ms),
        max(latency_max_ms),
        usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
      FROM fine GROUP BY hour, user_id ORDER BY hour, user_id
      ON CONFLICT (hour, user_id) DO UPDATE SET
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        cache_hits = r.cache_hits + excluded.cache_hits,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        total_tokens = r.total_tokens + excluded.total_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram)
  ),
  rollup_5 AS (
      INSERT INTO usage_rollups_user_totals_daily AS r (day, user_id, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
      SELECT day, user_id,
        sum(requests),
        sum(errors),
        sum(cache_hits),
        sum(prompt_tokens),
        sum(completion_tokens),
        sum(total_tokens),
        sum(cost_usd),
        min(latency_min_ms),
        max(latency_max_ms),
        usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
      FROM fine GROUP BY day, user_id ORDER BY day, user_id
      ON CONFLICT (day, user_id) DO UPDATE SET
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        cache_hits = r.cache_hits + excluded.cache_hits,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        total_tokens = r.total_tokens + excluded.total_tokens,
        cost_usd = r.cost_usd + excluded.cost_usd,
        latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram)
  )
  INSERT INTO usage_rollups_totals AS r (hour, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
  SELECT hour,
    sum(requests),
    sum(errors),
    sum(cache_hits),
    sum(prompt_tokens),
    sum(completion_tokens),
    sum(total_tokens),
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
  FROM fine GROUP BY hour ORDER BY hour
  ON CONFLICT (hour) DO UPDATE SET
    requests = r.requests + excluded.requests,
    errors = r.errors + excluded.errors,
    cache_hits = r.cache_hits + excluded.cache_hits,
    prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = r.completion_tokens + excluded.completion_tokens,
    total_tokens = r.total_tokens + excluded.total_tokens,
    cost_usd = r.cost_usd + excluded.cost_usd,
    latency_min_ms = least(r.latency_min_ms, excluded.latency_min_ms),
    latency_max_ms = greatest(r.latency_max_ms, excluded.latency_max_ms),
    latency_histogram = usage_histogram_add(r.latency_histogram, excluded.latency_histogram);
  RETURN cardinality(created_ats);
END
$$;
--> statement-breakpoint
-- Backfill: the requests stored before this migration (from here on the statement that stores a batch adds it).
-- An instance of an older version that still stores requests after this ran does not roll them up: stop those
-- before migrating. The coarser tables are summed from the finer ones. Tests and bench/dashboard.ts run the
-- statements between these two markers on their own.
-- backfill:start
INSERT INTO usage_rollups (hour, user_id, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT hour, user_id, model, provider, type,
    sum(requests),
    sum(errors),
    sum(cache_hits),
    sum(prompt_tokens),
    sum(completion_tokens),
    sum(total_tokens),
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    usage_histogram_of(array_agg(latency_bucket), array_agg(requests))
FROM (
  SELECT date_trunc('hour', created_at, 'UTC') AS hour, user_id, model, provider, type,
    usage_latency_bucket(latency_ms) AS latency_bucket,
    count(*) AS requests,
    count(*) FILTER (WHERE status = 'failed') AS errors,
    count(*) FILTER (WHERE cached) AS cache_hits,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS total_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    min(latency_ms) AS latency_min_ms,
    max(latency_ms) AS latency_max_ms
  FROM requests
  GROUP BY 1, 2, 3, 4, 5, 6
) fine
GROUP BY 1, 2, 3, 4, 5
ORDER BY 2, 1, 3, 4, 5;
--> statement-breakpoint
INSERT INTO usage_rollups_daily (day, user_id, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT date_trunc('day', hour, 'UTC'), user_id, model, provider, type,
    sum(requests)::bigint,
    sum(errors)::bigint,
    sum(cache_hits)::bigint,
    sum(prompt_tokens)::bigint,
    sum(completion_tokens)::bigint,
    sum(total_tokens)::bigint,
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    ARRAY[sum(latency_histogram[1]), sum(latency_histogram[2]), sum(latency_histogram[3]), sum(latency_histogram[4]), sum(latency_histogram[5]), sum(latency_histogram[6]), sum(latency_histogram[7]), sum(latency_histogram[8]), sum(latency_histogram[9]), sum(latency_histogram[10]), sum(latency_histogram[11]), sum(latency_histogram[12]), sum(latency_histogram[13]), sum(latency_histogram[14]), sum(latency_histogram[15]), sum(latency_histogram[16]), sum(latency_histogram[17]), sum(latency_histogram[18]), sum(latency_histogram[19]), sum(latency_histogram[20]), sum(latency_histogram[21]), sum(latency_histogram[22]), sum(latency_histogram[23]), sum(latency_histogram[24]), sum(latency_histogram[25]), sum(latency_histogram[26]), sum(latency_histogram[27]), sum(latency_histogram[28]), sum(latency_histogram[29]), sum(latency_histogram[30]), sum(latency_histogram[31]), sum(latency_histogram[32]), sum(latency_histogram[33]), sum(latency_histogram[34]), sum(latency_histogram[35]), sum(latency_histogram[36]), sum(latency_histogram[37]), sum(latency_histogram[38]), sum(latency_histogram[39]), sum(latency_histogram[40]), sum(latency_histogram[41]), sum(latency_histogram[42]), sum(latency_histogram[43]), sum(latency_histogram[44]), sum(latency_histogram[45]), sum(latency_histogram[46]), sum(latency_histogram[47]), sum(latency_histogram[48]), sum(latency_histogram[49]), sum(latency_histogram[50]), sum(latency_histogram[51]), sum(latency_histogram[52]), sum(latency_histogram[53]), sum(latency_histogram[54]), sum(latency_histogram[55]), sum(latency_histogram[56]), sum(latency_histogram[57])]::bigint[]
FROM usage_rollups
GROUP BY 1, 2, 3, 4, 5
ORDER BY 2, 1, 3, 4, 5;
--> statement-breakpoint
INSERT INTO usage_rollups_everyone (hour, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT hour, model, provider, type,
    sum(requests)::bigint,
    sum(errors)::bigint,
    sum(cache_hits)::bigint,
    sum(prompt_tokens)::bigint,
    sum(completion_tokens)::bigint,
    sum(total_tokens)::bigint,
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    ARRAY[sum(latency_histogram[1]), sum(latency_histogram[2]), sum(latency_histogram[3]), sum(latency_histogram[4]), sum(latency_histogram[5]), sum(latency_histogram[6]), sum(latency_histogram[7]), sum(latency_histogram[8]), sum(latency_histogram[9]), sum(latency_histogram[10]), sum(latency_histogram[11]), sum(latency_histogram[12]), sum(latency_histogram[13]), sum(latency_histogram[14]), sum(latency_histogram[15]), sum(latency_histogram[16]), sum(latency_histogram[17]), sum(latency_histogram[18]), sum(latency_histogram[19]), sum(latency_histogram[20]), sum(latency_histogram[21]), sum(latency_histogram[22]), sum(latency_histogram[23]), sum(latency_histogram[24]), sum(latency_histogram[25]), sum(latency_histogram[26]), sum(latency_histogram[27]), sum(latency_histogram[28]), sum(latency_histogram[29]), sum(latency_histogram[30]), sum(latency_histogram[31]), sum(latency_histogram[32]), sum(latency_histogram[33]), sum(latency_histogram[34]), sum(latency_histogram[35]), sum(latency_histogram[36]), sum(latency_histogram[37]), sum(latency_histogram[38]), sum(latency_histogram[39]), sum(latency_histogram[40]), sum(latency_histogram[41]), sum(latency_histogram[42]), sum(latency_histogram[43]), sum(latency_histogram[44]), sum(latency_histogram[45]), sum(latency_histogram[46]), sum(latency_histogram[47]), sum(latency_histogram[48]), sum(latency_histogram[49]), sum(latency_histogram[50]), sum(latency_histogram[51]), sum(latency_histogram[52]), sum(latency_histogram[53]), sum(latency_histogram[54]), sum(latency_histogram[55]), sum(latency_histogram[56]), sum(latency_histogram[57])]::bigint[]
FROM usage_rollups
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4;
--> statement-breakpoint
INSERT INTO usage_rollups_everyone_daily (day, model, provider, type, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT day, model, provider, type,
    sum(requests)::bigint,
    sum(errors)::bigint,
    sum(cache_hits)::bigint,
    sum(prompt_tokens)::bigint,
    sum(completion_tokens)::bigint,
    sum(total_tokens)::bigint,
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    ARRAY[sum(latency_histogram[1]), sum(latency_histogram[2]), sum(latency_histogram[3]), sum(latency_histogram[4]), sum(latency_histogram[5]), sum(latency_histogram[6]), sum(latency_histogram[7]), sum(latency_histogram[8]), sum(latency_histogram[9]), sum(latency_histogram[10]), sum(latency_histogram[11]), sum(latency_histogram[12]), sum(latency_histogram[13]), sum(latency_histogram[14]), sum(latency_histogram[15]), sum(latency_histogram[16]), sum(latency_histogram[17]), sum(latency_histogram[18]), sum(latency_histogram[19]), sum(latency_histogram[20]), sum(latency_histogram[21]), sum(latency_histogram[22]), sum(latency_histogram[23]), sum(latency_histogram[24]), sum(latency_histogram[25]), sum(latency_histogram[26]), sum(latency_histogram[27]), sum(latency_histogram[28]), sum(latency_histogram[29]), sum(latency_histogram[30]), sum(latency_histogram[31]), sum(latency_histogram[32]), sum(latency_histogram[33]), sum(latency_histogram[34]), sum(latency_histogram[35]), sum(latency_histogram[36]), sum(latency_histogram[37]), sum(latency_histogram[38]), sum(latency_histogram[39]), sum(latency_histogram[40]), sum(latency_histogram[41]), sum(latency_histogram[42]), sum(latency_histogram[43]), sum(latency_histogram[44]), sum(latency_histogram[45]), sum(latency_histogram[46]), sum(latency_histogram[47]), sum(latency_histogram[48]), sum(latency_histogram[49]), sum(latency_histogram[50]), sum(latency_histogram[51]), sum(latency_histogram[52]), sum(latency_histogram[53]), sum(latency_histogram[54]), sum(latency_histogram[55]), sum(latency_histogram[56]), sum(latency_histogram[57])]::bigint[]
FROM usage_rollups_daily
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4;
--> statement-breakpoint
INSERT INTO usage_rollups_user_totals (hour, user_id, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT hour, user_id,
    sum(requests)::bigint,
    sum(errors)::bigint,
    sum(cache_hits)::bigint,
    sum(prompt_tokens)::bigint,
    sum(completion_tokens)::bigint,
    sum(total_tokens)::bigint,
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    ARRAY[sum(latency_histogram[1]), sum(latency_histogram[2]), sum(latency_histogram[3]), sum(latency_histogram[4]), sum(latency_histogram[5]), sum(latency_histogram[6]), sum(latency_histogram[7]), sum(latency_histogram[8]), sum(latency_histogram[9]), sum(latency_histogram[10]), sum(latency_histogram[11]), sum(latency_histogram[12]), sum(latency_histogram[13]), sum(latency_histogram[14]), sum(latency_histogram[15]), sum(latency_histogram[16]), sum(latency_histogram[17]), sum(latency_histogram[18]), sum(latency_histogram[19]), sum(latency_histogram[20]), sum(latency_histogram[21]), sum(latency_histogram[22]), sum(latency_histogram[23]), sum(latency_histogram[24]), sum(latency_histogram[25]), sum(latency_histogram[26]), sum(latency_histogram[27]), sum(latency_histogram[28]), sum(latency_histogram[29]), sum(latency_histogram[30]), sum(latency_histogram[31]), sum(latency_histogram[32]), sum(latency_histogram[33]), sum(latency_histogram[34]), sum(latency_histogram[35]), sum(latency_histogram[36]), sum(latency_histogram[37]), sum(latency_histogram[38]), sum(latency_histogram[39]), sum(latency_histogram[40]), sum(latency_histogram[41]), sum(latency_histogram[42]), sum(latency_histogram[43]), sum(latency_histogram[44]), sum(latency_histogram[45]), sum(latency_histogram[46]), sum(latency_histogram[47]), sum(latency_histogram[48]), sum(latency_histogram[49]), sum(latency_histogram[50]), sum(latency_histogram[51]), sum(latency_histogram[52]), sum(latency_histogram[53]), sum(latency_histogram[54]), sum(latency_histogram[55]), sum(latency_histogram[56]), sum(latency_histogram[57])]::bigint[]
FROM usage_rollups
GROUP BY 1, 2
ORDER BY 1, 2;
--> statement-breakpoint
INSERT INTO usage_rollups_user_totals_daily (day, user_id, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT day, user_id,
    sum(requests)::bigint,
    sum(errors)::bigint,
    sum(cache_hits)::bigint,
    sum(prompt_tokens)::bigint,
    sum(completion_tokens)::bigint,
    sum(total_tokens)::bigint,
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    ARRAY[sum(latency_histogram[1]), sum(latency_histogram[2]), sum(latency_histogram[3]), sum(latency_histogram[4]), sum(latency_histogram[5]), sum(latency_histogram[6]), sum(latency_histogram[7]), sum(latency_histogram[8]), sum(latency_histogram[9]), sum(latency_histogram[10]), sum(latency_histogram[11]), sum(latency_histogram[12]), sum(latency_histogram[13]), sum(latency_histogram[14]), sum(latency_histogram[15]), sum(latency_histogram[16]), sum(latency_histogram[17]), sum(latency_histogram[18]), sum(latency_histogram[19]), sum(latency_histogram[20]), sum(latency_histogram[21]), sum(latency_histogram[22]), sum(latency_histogram[23]), sum(latency_histogram[24]), sum(latency_histogram[25]), sum(latency_histogram[26]), sum(latency_histogram[27]), sum(latency_histogram[28]), sum(latency_histogram[29]), sum(latency_histogram[30]), sum(latency_histogram[31]), sum(latency_histogram[32]), sum(latency_histogram[33]), sum(latency_histogram[34]), sum(latency_histogram[35]), sum(latency_histogram[36]), sum(latency_histogram[37]), sum(latency_histogram[38]), sum(latency_histogram[39]), sum(latency_histogram[40]), sum(latency_histogram[41]), sum(latency_histogram[42]), sum(latency_histogram[43]), sum(latency_histogram[44]), sum(latency_histogram[45]), sum(latency_histogram[46]), sum(latency_histogram[47]), sum(latency_histogram[48]), sum(latency_histogram[49]), sum(latency_histogram[50]), sum(latency_histogram[51]), sum(latency_histogram[52]), sum(latency_histogram[53]), sum(latency_histogram[54]), sum(latency_histogram[55]), sum(latency_histogram[56]), sum(latency_histogram[57])]::bigint[]
FROM usage_rollups_daily
GROUP BY 1, 2
ORDER BY 1, 2;
--> statement-breakpoint
INSERT INTO usage_rollups_totals (hour, requests, errors, cache_hits, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_min_ms, latency_max_ms, latency_histogram)
SELECT hour,
    sum(requests)::bigint,
    sum(errors)::bigint,
    sum(cache_hits)::bigint,
    sum(prompt_tokens)::bigint,
    sum(completion_tokens)::bigint,
    sum(total_tokens)::bigint,
    sum(cost_usd),
    min(latency_min_ms),
    max(latency_max_ms),
    ARRAY[sum(latency_histogram[1]), sum(latency_histogram[2]), sum(latency_histogram[3]), sum(latency_histogram[4]), sum(latency_histogram[5]), sum(latency_histogram[6]), sum(latency_histogram[7]), sum(latency_histogram[8]), sum(latency_histogram[9]), sum(latency_histogram[10]), sum(latency_histogram[11]), sum(latency_histogram[12]), sum(latency_histogram[13]), sum(latency_histogram[14]), sum(latency_histogram[15]), sum(latency_histogram[16]), sum(latency_histogram[17]), sum(latency_histogram[18]), sum(latency_histogram[19]), sum(latency_histogram[20]), sum(latency_histogram[21]), sum(latency_histogram[22]), sum(latency_histogram[23]), sum(latency_histogram[24]), sum(latency_histogram[25]), sum(latency_histogram[26]), sum(latency_histogram[27]), sum(latency_histogram[28]), sum(latency_histogram[29]), sum(latency_histogram[30]), sum(latency_histogram[31]), sum(latency_histogram[32]), sum(latency_histogram[33]), sum(latency_histogram[34]), sum(latency_histogram[35]), sum(latency_histogram[36]), sum(latency_histogram[37]), sum(latency_histogram[38]), sum(latency_histogram[39]), sum(latency_histogram[40]), sum(latency_histogram[41]), sum(latency_histogram[42]), sum(latency_histogram[43]), sum(latency_histogram[44]), sum(latency_histogram[45]), sum(latency_histogram[46]), sum(latency_histogram[47]), sum(latency_histogram[48]), sum(latency_histogram[49]), sum(latency_histogram[50]), sum(latency_histogram[51]), sum(latency_histogram[52]), sum(latency_histogram[53]), sum(latency_histogram[54]), sum(latency_histogram[55]), sum(latency_histogram[56]), sum(latency_histogram[57])]::bigint[]
FROM usage_rollups_everyone
GROUP BY 1
ORDER BY 1;
-- backfill:end
