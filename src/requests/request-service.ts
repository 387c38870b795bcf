import type { ChatCompletionRequest, EmbeddingRequest, EmbeddingResponse } from "../providers/provider.ts";
import type { Caller, CallContext } from "./job.ts";
import { createNativeJobs } from "./native-jobs.ts";
import { createOpenAIJobs } from "./openai-jobs.ts";
import { type ChatStream, createPipeline, type Outcome, type PipelineDeps } from "./pipeline.ts";
import type { CreateRequest, CreateRequestOf } from "./schemas.ts";
import { completionCodec, textCodec } from "./streaming.ts";

export interface RequestServiceDeps extends PipelineDeps {
  defaultChatModel: string;
  defaultEmbedModel: string;
}

export type { CacheMode, CacheResult, Caller, CallContext } from "./job.ts";
export type { ChatStream, Outcome } from "./pipeline.ts";

export type RequestService = ReturnType<typeof createRequestService>;

/**
 * The service's entry points, one per way in: each turns its API's request into a Job and hands it to the one
 * pipeline (pipeline.ts), as an answer or as a stream.
 */
export function createRequestService(deps: RequestServiceDeps) {
  const pipeline = createPipeline(deps);
  const { observeUpstream } = pipeline;
  const nativeJob = createNativeJobs({ ...deps, observeUpstream });
  const openAIJobs = createOpenAIJobs({ provider: deps.provider, observeUpstream });

  return {
    /** POST /requests: the answer is the request object. */
    create(caller: Caller, request: CreateRequest, context: CallContext): Promise<Outcome<unknown>> {
      return pipeline.run(nativeJob(caller, request, context).job);
    },

    /**
     * POST /requests with `"stream": true` (chat, summarize, translate): the upstream's chunks as they come; the
     * stored output is the whole text, cached as a plain native request's is, so either answers the other's repeats.
     */
    createStream(
      caller: Caller,
      request: CreateRequestOf<"chat" | "summarize" | "translate">,
      context: CallContext,
    ): Promise<ChatStream> {
      const { job, chatBody } = nativeJob(caller, request, context);
      return pipeline.stream(job, chatBody(request, job.model), textCodec);
    },

    /**
     * A queued request (src/queue/) run now: the same job as a direct one, its record taking the queued row's place
     * (same id and creation time).
     */
    runQueued(
      caller: Caller,
      request: CreateRequest,
      queued: { id: string; createdAt: Date },
      context: CallContext,
    ): Promise<Outcome<unknown>> {
      const { job } = nativeJob(caller, request, context);
      job.queued = { id: queued.id, createdAt: queued.createdAt };
      return pipeline.run(job);
    },

    /** POST /v1/chat/completions: the answer is OpenAI's completion object. */
    chatCompletion(caller: Caller, asked: ChatCompletionRequest, context: CallContext) {
      return pipeline.run(openAIJobs.chat(caller, asked, context).job);
    },

    /** POST /v1/chat/completions with `stream: true`. */
    chatCompletionStream(caller: Caller, asked: ChatCompletionRequest, context: CallContext) {
      const { job, body } = openAIJobs.chat(caller, asked, context);
      return pipeline.stream(job, body, completionCodec);
    },

    /**
     * POST /v1/messages, translated to a chat call (requests/anthropic/) for whichever provider serves the model;
     * the answer is translated back by the route. Recorded with source `anthropic`, cached apart from /v1's.
     */
    messages(caller: Caller, asked: ChatCompletionRequest, context: CallContext) {
      return pipeline.run(openAIJobs.chat(caller, asked, context, "anthropic").job);
    },

    /** POST /v1/messages with `stream: true`: the chunks, which the route turns into Anthropic's events. */
    messagesStream(caller: Caller, asked: ChatCompletionRequest, context: CallContext) {
      const { job, body } = openAIJobs.chat(caller, asked, context, "anthropic");
      return pipeline.stream(job, body, completionCodec);
    },

    /** POST /v1/embeddings. */
    embeddings(caller: Caller, body: EmbeddingRequest, context: CallContext): Promise<Outcome<EmbeddingResponse>> {
      return pipeline.run(openAIJobs.embeddings(caller, body, context));
    },
  };
}
