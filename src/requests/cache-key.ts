import { createHash } from "node:crypto";
import type { RequestSource } from "../db/types.ts";
import { userHashTag } from "../redis-connection.ts";
import { canonicalJson } from "./canonical-json.ts";

/** Bump when the cached value's shape or a type's prompt changes, so old entries are never served. */
const cacheKeyVersion = 2;

export interface CacheKeyParts {
  /** The user whose answers these are: one user's answers are never served to another. */
  userId: string;
  /** The API the answer is shaped for (native request object or OpenAI's own). */
  api: RequestSource;
  type: string;
  /** The provider that serves the model: an answer is never served for another provider's. */
  provider: string;
  model: string;
  input: unknown;
  /** Everything that changes the output; never metadata or cache flags. */
  options: unknown;
}

export function cacheKey(parts: CacheKeyParts): string {
  const digest = createHash("sha256")
    .update(
      canonicalJson([cacheKeyVersion, parts.api, parts.type, parts.provider, parts.model, parts.input, parts.options]),
    )
    .digest("base64url");
  // The user's hash tag puts the entry (and its coalescing lock) in the slot of the user's limits.
  return `${userHashTag(parts.userId)}:${digest}`;
}
