CREATE TABLE "batches" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"api_key_id" text,
	"size" integer NOT NULL,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"cancelled_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "requests" DROP CONSTRAINT "requests_status_check";--> statement-breakpoint
ALTER TABLE "requests" ADD COLUMN "batch_id" text;--> statement-breakpoint
ALTER TABLE "requests" ADD COLUMN "run_token" text;--> statement-breakpoint
ALTER TABLE "batches" ADD CONSTRAINT "batches_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "requests_batch_idx" ON "requests" USING btree ("batch_id","id" DESC NULLS LAST) WHERE "requests"."batch_id" is not null;--> statement-breakpoint
CREATE INDEX "requests_user_unfinished_idx" ON "requests" USING btree ("user_id") WHERE "requests"."status" in ('queued', 'running');--> statement-breakpoint
ALTER TABLE "requests" ADD CONSTRAINT "requests_status_check" CHECK ("requests"."status" in ('queued', 'running', 'completed', 'failed', 'cancelled'));--> statement-breakpoint
-- Usage sums leave out queued and running requests (not done, nothing used yet): the covering index of 0002 carries
-- the status too, so the sums stay an index-only scan. Rebuilding it locks writes to requests for as long as it takes
-- (seconds per million rows).
DROP INDEX IF EXISTS "requests_user_usage_idx";
--> statement-breakpoint
CREATE INDEX "requests_user_usage_idx" ON "requests" USING btree ("user_id", "created_at")
  INCLUDE ("model", "cached", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "status");
