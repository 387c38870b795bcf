/**
 * What the request service needs from a model provider. Bodies and answers are OpenAI's wire format, so the
 * OpenAI-compatible routes can pass them through untouched and the native types are a thin mapping on top.
 */

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | null | unknown[];
  [key: string]: unknown;
}

/** OpenAI's CreateChatCompletionRequest; fields the service does not read pass through as they are. */
export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  response_format?: { type: "text" } | { type: "json_object" } | { type: "json_schema"; json_schema: JsonSchemaFormat };
  [key: string]: unknown;
}

export interface JsonSchemaFormat {
  name: string;
  schema: Record<string, unknown>;
  strict?: boolean;
  description?: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [key: string]: unknown;
}

/** OpenAI's CreateChatCompletionResponse (the fields the service reads; the rest passes through). */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string | null; refusal?: string | null; [key: string]: unknown };
    finish_reason: string | null;
    logprobs?: unknown;
    [key: string]: unknown;
  }>;
  usage?: Usage;
  [key: string]: unknown;
}

/** OpenAI's CreateChatCompletionStreamResponse. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string | null; [key: string]: unknown };
    finish_reason: string | null;
    [key: string]: unknown;
  }>;
  usage?: Usage | null;
  [key: string]: unknown;
}

export interface EmbeddingRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: "float" | "base64";
  dimensions?: number;
  user?: string;
  [key: string]: unknown;
}

export interface EmbeddingResponse {
  object: "list";
  data: Array<{ object: "embedding"; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface ModelList {
  object: "list";
  data: Array<{ id: string; object: "model"; created: number; owned_by: string }>;
}

export interface CallOptions {
  /** Aborts the upstream call (client gone, shutdown). */
  signal?: AbortSignal;
  /** Told of each retry before its wait: how a caller learns of a call's retries, a failed call's and a stream's too. */
  onRetry?: (retry: RetryEvent) => void;
}

export interface RetryEvent {
  /** The attempt about to be made (2 = the first retry). */
  attempt: number;
  /** What failed: the upstream's status ("429", "503"), "timeout" or "connection". */
  reason: string;
  /** How long the provider waits before that attempt. */
  delayMs: number;
}

/** A call's answer, and how long it took; its retries are told through `CallOptions.onRetry`. */
export interface CallOutcome<T> {
  value: T;
  /** Time spent waiting on the upstream, all attempts included. */
  upstreamMs: number;
}

export interface Provider {
  /** The provider's name in records, metrics and `name/model` (openai, anthropic, mock, or a PROVIDERS_FILE name). */
  readonly name: string;
  /** Which provider serves `model`: a router's answer; a single provider leaves it out (it is `name`). */
  nameOf?(model: string): string;
  chatCompletion(body: ChatCompletionRequest, options?: CallOptions): Promise<CallOutcome<ChatCompletion>>;
  /**
   * Streams chunks as they arrive. The request asks the upstream for usage (`stream_options.include_usage`);
   * the last chunk then carries it. Aborting the signal closes the upstream connection.
   */
  chatCompletionStream(body: ChatCompletionRequest, options?: CallOptions): AsyncIterable<ChatCompletionChunk>;
  embeddings(body: EmbeddingRequest, options?: CallOptions): Promise<CallOutcome<EmbeddingResponse>>;
  /** The prompt's input tokens by the provider's own count, where it has an API for it (Anthropic does). */
  countTokens?(body: ChatCompletionRequest, options?: CallOptions): Promise<number>;
  listModels(options?: CallOptions): Promise<ModelList>;
  close(): Promise<void>;
}
