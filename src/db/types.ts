/** The stored records as the rest of the service sees them (camelCase, numbers as numbers, Dates as Dates). */

export const requestTypes = ["chat", "summarize", "translate", "classify", "extract", "embed"] as const;
export type RequestType = (typeof requestTypes)[number];

/** `queued` and `running`: a request asked with `Prefer: respond-async`, not finished yet (src/queue/). */
export const requestStatuses = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type RequestStatus = (typeof requestStatuses)[number];

/** Which API the request came in through. */
export type RequestSource = "native" | "openai" | "anthropic";

export interface StoredError {
  code: string;
  message: string;
}

/** One attempt at the upstream: the model tried and how it went (`ok`, `503`, `timeout`, an error code …). */
export interface AttemptRecord {
  model: string;
  outcome: string;
}

export interface RequestRecord {
  id: string;
  userId: string;
  apiKeyId: string | null;
  type: RequestType;
  source: RequestSource;
  model: string;
  provider: string;
  status: RequestStatus;
  /** Null once deleted. */
  input: unknown;
  options: Record<string, unknown> | null;
  output: unknown;
  error: StoredError | null;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Null when the model's price is unknown. */
  costUsd: number | null;
  cached: boolean;
  latencyMs: number;
  upstreamMs: number | null;
  /** How long the entry took (limits and cache lookup), ms; null when it did not answer or was not measured. */
  entryMs: number | null;
  retries: number;
  /** Every attempt in order, fallbacks included; empty for a cache hit. */
  attempts: AttemptRecord[];
  metadata: Record<string, string>;
  createdAt: Date;
  completedAt: Date | null;
  deletedAt: Date | null;
}

export type Role = "user" | "admin";

export interface UserRecord {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  disabled: boolean;
  rpm: number | null;
  tpm: number | null;
  monthlyBudgetUsd: number | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ApiKeyRecord {
  id: string;
  userId: string;
  name: string | null;
  /** The first characters of the key, for display (`arh_AbCd1234`). */
  prefix: string;
  /** SHA-256 of the full key, hex. */
  hash: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** This key's own limits, applied on top of its user's; null: only the user's apply. */
  rpm: number | null;
  tpm: number | null;
}

export interface RequestListQuery {
  /** One user's requests; undefined: everyone's (admins), newest first by id, which is time-ordered. */
  userId?: string;
  /** 1..100 */
  limit: number;
  /** Opaque cursor from a previous page's next_cursor; the repository validates it. */
  cursor?: string;
  type?: RequestType;
  status?: RequestStatus;
  model?: string;
  provider?: string;
  /** The requests of one batch (POST /requests/batch). */
  batchId?: string;
  /** Created at or after. */
  from?: Date;
  /** Created before. */
  to?: Date;
}

export interface RequestPage {
  data: RequestRecord[];
  nextCursor: string | null;
}
