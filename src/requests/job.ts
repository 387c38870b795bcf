import type { ApiKeyRecord, AttemptRecord, RequestSource, RequestType, UserRecord } from "../db/types.ts";
import type { EstimateBody, PromptSize } from "../limits/estimate.ts";
import type { CallOptions } from "../providers/provider.ts";

/**
 * One request as the pipeline sees it, whichever API it came in by (native, /v1, streamed or not): who asks, what,
 * how it is called, and what the call produced.
 */

/** `use`: read and fill; `refresh` (Cache-Control: no-cache): skip the read, fill; `bypass`: neither. */
export type CacheMode = "use" | "refresh" | "bypass";
export type CacheResult = "hit" | "miss" | "bypass";

/** Who is asking: the user and the key they used (null for the operator's own key). */
export interface Caller {
  user: UserRecord;
  key: ApiKeyRecord | null;
}

export interface CallContext {
  cacheMode: CacheMode;
  /** Aborted when the client goes away: the upstream call is cancelled and the request stored as cancelled. */
  signal?: AbortSignal;
}

// A type alias (not an interface) so that it fits OpenAI's Usage, which allows more fields.
export type TokenUsage = {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
};

/** What one upstream call produced: the answer (as the API returns it), what is stored as output, and usage. */
export interface Produced<T> {
  value: T;
  model: string;
  /** The provider that answered. */
  provider: string;
  usage: TokenUsage;
  upstreamMs: number;
  /** The prompt tokens the upstream itself reported for one call (not counted here): what teaches a ratio. */
  reportedPromptTokens: number | undefined;
}

/** What the cache holds: enough to answer again without the upstream. */
export interface CacheEntry<T> {
  provider: string;
  model: string;
  value: T;
  usage: TokenUsage;
}

/** One request through the pipeline, independent of the API it came in by. */
export interface Job<T> {
  caller: Caller;
  context: CallContext;
  type: RequestType;
  source: RequestSource;
  model: string;
  input: unknown;
  /** Everything besides the input that changes the answer; stored, and part of the cache key. */
  options: Record<string, unknown>;
  metadata: Record<string, string>;
  /** The request's own cache switch (`"cache": false`); Cache-Control is in the context. */
  cacheable: boolean;
  /** The stored output for an answer. */
  outputOf(value: T): unknown;
  /**
   * What the call may use at most, reserved against the limits before it is made. Computed only for a caller with
   * a token limit or a budget (it runs the prompt builder); `size` keeps its prompt's size for the learning after.
   */
  estimate(): { body: EstimateBody; maxOutputTokens: number };
  size?: PromptSize;
  /** A queued request (src/queue/) run now: its record replaces the queued row, keeping its id and creation time. */
  queued?: { id: string; createdAt: Date };
  /** Calls the upstream with this model (the job's own, or a fallback). */
  call(model: string, callOptions: CallOptions): Promise<Produced<T>>;
}

/** What the upstream call went through: retries, and each attempt's model and outcome, for the record. */
export interface Progress {
  retries: number;
  attempts: AttemptRecord[];
  /** The model being tried now (the job's own or a fallback). */
  model: string;
}

export const newProgress = (model: string): Progress => ({ retries: 0, attempts: [], model });

/** When a request started: the wall time stored with it, and the monotonic time its latency is measured from. */
export interface Started {
  at: Date;
  ms: number;
  /** How long the entry took (limits and cache lookup: one Redis round trip); null until it has answered. */
  entryMs: number | null;
}

export const startNow = (): Started => ({ at: new Date(), ms: performance.now(), entryMs: null });

/** Marks the end of the entry: the first share of the request's latency that its record keeps. */
export function entered(started: Started): void {
  started.entryMs = performance.now() - started.ms;
}

/** A job without its call: what the cache, the records and a stream need to know. */
export type JobInfo<T> = Omit<Job<T>, "call">;
