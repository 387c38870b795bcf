ALTER TABLE "api_keys" ADD COLUMN "rpm" integer;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "tpm" integer;