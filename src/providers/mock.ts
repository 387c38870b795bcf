/**
 * The built-in provider when no OpenAI key is configured, and the fast one for tests: the same deterministic
 * answers as the mock upstream server (providers/mock-model/), computed in-process, with no network.
 */
import { AppError } from "../errors.ts";
import { tokenizerModule } from "../tokens.ts";
import { createChatCompletion, createChatCompletionChunks } from "./mock-model/chat.ts";
import { createEmbeddings, listMockModels } from "./mock-model/embeddings.ts";
import { type InvalidRequest, validateChatCompletionRequest, validateEmbeddingRequest } from "./mock-model/validate.ts";
import type {
  CallOptions,
  CallOutcome,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  ModelList,
  Provider,
} from "./provider.ts";

function throwIfInvalid(invalid: InvalidRequest | undefined): void {
  if (invalid) throw new AppError("invalid_request", invalid.message, invalid.param ? { param: invalid.param } : {});
}

/** Rejects like an aborted upstream call would: with the signal's reason. */
function throwIfAborted(options: CallOptions | undefined): void {
  options?.signal?.throwIfAborted();
}

function outcome<T>(value: T, started: number): CallOutcome<T> {
  return { value, upstreamMs: performance.now() - started };
}

export function createMockProvider(): Provider {
  // Every mock answer is counted with the tokenizer: load it now rather than in the first request.
  tokenizerModule();
  return {
    name: "mock",

    async chatCompletion(body: ChatCompletionRequest, options?: CallOptions): Promise<CallOutcome<ChatCompletion>> {
      const started = performance.now();
      throwIfAborted(options);
      throwIfInvalid(validateChatCompletionRequest(body));
      return outcome(createChatCompletion(body), started);
    },

    async *chatCompletionStream(
      body: ChatCompletionRequest,
      options?: CallOptions,
    ): AsyncIterable<ChatCompletionChunk> {
      throwIfAborted(options);
      throwIfInvalid(validateChatCompletionRequest(body));
      // The interface promises the usage chunk last, whatever the caller's stream_options said.
      for (const chunk of createChatCompletionChunks(body, { includeUsage: true })) {
        throwIfAborted(options);
        yield chunk;
      }
    },

    async embeddings(body: EmbeddingRequest, options?: CallOptions): Promise<CallOutcome<EmbeddingResponse>> {
      const started = performance.now();
      throwIfAborted(options);
      throwIfInvalid(validateEmbeddingRequest(body));
      return outcome(createEmbeddings(body), started);
    },

    async listModels(options?: CallOptions): Promise<ModelList> {
      throwIfAborted(options);
      return listMockModels();
    },

    async close(): Promise<void> {},
  };
}
