// The shapes of the service's JSON answers that the dashboard reads (see GET /openapi.json).

export const requestTypes = ["chat", "summarize", "translate", "classify", "extract", "embed"] as const;
export type RequestType = (typeof requestTypes)[number];

/** `queued` and `running`: a request sent with `Prefer: respond-async` or in a batch, not finished yet. */
export const requestStatuses = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type RequestStatus = (typeof requestStatuses)[number];

/** Types that can answer as a stream of server-sent events. */
export const streamingTypes: readonly RequestType[] = ["chat", "summarize", "translate"];

export type Role = "user" | "admin";

export interface SessionUser {
  id: string;
  email: string;
  name: string | null;
  role: Role;
}

/** `user` is null for the operator's ADMIN_API_KEY: an admin with no user (and so no "me" data) of its own. */
export interface Session {
  user: SessionUser | null;
  role: Role;
  expires_at: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RequestItem {
  id: string;
  object: "request";
  type: RequestType;
  status: RequestStatus;
  provider: string;
  model: string;
  output: unknown;
  error: { code: string; message: string } | null;
  usage: Usage;
  cost_usd: number | null;
  cached: boolean;
  latency_ms: number;
  created_at: string;
  completed_at: string | null;
  metadata: Record<string, string>;
  /** Only in the admin listings. */
  user_id?: string;
}

/** How a request reached the service: its native API, or the OpenAI- or Anthropic-compatible one. */
export type RequestSource = "native" | "openai" | "anthropic";

export interface RequestDetail extends RequestItem {
  input: unknown;
  options: Record<string, unknown> | null;
  retries?: number;
  attempts?: { model: string; outcome: string }[];
  /** The time spent waiting on the upstream model, every attempt included; null when none was called (a cache hit). */
  upstream_ms?: number | null;
  /** The time spent on the limits and the cache lookup (one round trip); null when not measured. */
  entry_ms?: number | null;
  source?: RequestSource;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface Limits {
  rpm: number | null;
  tpm: number | null;
  monthly_budget_usd: number | null;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  disabled: boolean;
  limits: Limits;
  created_at: string;
}

export interface ApiKey {
  id: string;
  prefix: string;
  name: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  limits: { rpm: number | null; tpm: number | null };
}

export interface CreatedKey extends ApiKey {
  /** The whole key: in this answer only. */
  key: string;
}

export interface RateWindow {
  limit: number;
  remaining: number;
  reset: string;
}

export interface Me extends User {
  key: ApiKey | null;
  usage: {
    last_minute: { requests: number; total_tokens: number };
    rate_limits: { requests: RateWindow | null; tokens: RateWindow | null };
    this_month: {
      requests: number;
      total_tokens: number;
      cost_usd: number;
      cache_hits: number;
      from: string;
      to: string;
      budget_remaining_usd: number | null;
    };
  };
}

export interface OverviewTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: number;
  cache_hits: number;
  errors: number;
  cache_hit_rate: number;
  error_rate: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export interface OverviewBucket extends OverviewTotals {
  start: string;
}

export interface OverviewGroup extends OverviewTotals {
  key: string;
  /** by_user only. */
  email?: string;
}

export type Bucket = "hour" | "day";

export interface Overview {
  object: "overview";
  from: string;
  to: string;
  bucket: Bucket;
  totals: OverviewTotals;
  series: OverviewBucket[];
  by_model: OverviewGroup[];
  by_provider: OverviewGroup[];
  by_type: OverviewGroup[];
  by_user?: OverviewGroup[];
}

export interface Model {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}
