import cors from "@fastify/cors";
import type { FastifyInstance } from "fastify";

/**
 * Cross-origin access from browsers, only for the origins listed in CORS_ORIGINS (`*`: any). Off when unset: no
 * Access-Control-* header at all, so browsers keep other sites' pages from reading the API. Keys travel in the
 * Authorization header, never in cookies, so credentials stay off. Request headers are allowed as the preflight
 * asks for them (OpenAI's SDKs send x-stainless-* and openai-* headers of their own).
 */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  await app.register(cors, {
    origin: origins.includes("*") ? "*" : [...origins],
    credentials: false,
    methods: ["GET", "POST", "PATCH", "DELETE"],
    exposedHeaders: [
      "x-request-id",
      "x-cache",
      "location",
      "idempotent-replayed",
      "retry-after",
      "retry-after-ms",
      "x-should-retry",
      "x-ratelimit-limit-requests",
      "x-ratelimit-remaining-requests",
      "x-ratelimit-reset-requests",
      "x-ratelimit-limit-tokens",
      "x-ratelimit-remaining-tokens",
      "x-ratelimit-reset-tokens",
    ],
    maxAge: 600,
  });
}
