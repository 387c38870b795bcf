import type { RequestType } from "../db/types.ts";
import { AppError } from "../errors.ts";
import { defaultMaxOutputTokens } from "../limits/estimate.ts";
import type { CallOptions, ChatCompletionRequest, Provider, Usage } from "../providers/provider.ts";
import type { Caller, CallContext, Job, Produced, TokenUsage } from "./job.ts";
import { isMetered } from "./reservation.ts";
import type { CreateRequest } from "./schemas.ts";
import { type ChatTask, taskTypes } from "./task-types.ts";

type NativeChatRequest = Exclude<CreateRequest, { type: "embed" }>;

export interface NativeJob {
  job: Job<unknown>;
  /** The chat body sent for a model; built once for the job's own model (its estimate and its call share it). */
  chatBody(chat: NativeChatRequest, model: string): ChatCompletionRequest;
}

/**
 * The native API's way in: a `POST /requests` body as a Job. Chat-like types are built into a chat completion by
 * their task type and their output parsed (and retried once when a type asks for it); `embed` is one embedding.
 */
export function createNativeJobs(deps: {
  provider: Provider;
  defaultChatModel: string;
  defaultEmbedModel: string;
  observeUpstream(model: string, upstreamMs: number): void;
}) {
  const { provider, observeUpstream } = deps;
  const nameOf = (model: string) => provider.nameOf?.(model) ?? provider.name;

  function nativeJob(caller: Caller, request: CreateRequest, context: CallContext): NativeJob {
    const model = request.model ?? (request.type === "embed" ? deps.defaultEmbedModel : deps.defaultChatModel);
    let own: ChatCompletionRequest | undefined;
    const chatBody = (chat: NativeChatRequest, callModel: string): ChatCompletionRequest => {
      if (callModel !== model) return nativeChatBody(caller, chat, callModel);
      own ??= nativeChatBody(caller, chat, model);
      return own;
    };
    const job: Job<unknown> = {
      estimate: () =>
        request.type === "embed"
          ? { body: { input: request.input }, maxOutputTokens: 0 }
          : {
              body: chatBody(request, model),
              maxOutputTokens: request.options.max_tokens ?? defaultMaxOutputTokens,
            },
      caller,
      context,
      type: request.type,
      source: "native",
      model,
      input: request.input,
      options: request.options,
      metadata: request.metadata ?? {},
      cacheable: request.cache,
      outputOf: (output) => output,
      call: (callModel, callOptions) =>
        request.type === "embed"
          ? callEmbed(request, callModel, callOptions)
          : callChat(request, chatBody(request, callModel), callModel, callOptions),
    };
    return { job, chatBody };
  }

  async function callEmbed(
    request: Extract<CreateRequest, { type: "embed" }>,
    model: string,
    callOptions: CallOptions,
  ): Promise<Produced<unknown>> {
    const call = await provider.embeddings(taskTypes.embed.build(request, model), callOptions);
    const embedding = call.value.data[0]?.embedding;
    if (!Array.isArray(embedding)) throw new AppError("upstream_error", "the upstream answered with no embedding");
    observeUpstream(model, call.upstreamMs);
    const { prompt_tokens, total_tokens } = call.value.usage;
    return {
      value: { embedding, dimensions: embedding.length },
      model,
      provider: nameOf(model),
      usage: { prompt_tokens, completion_tokens: 0, total_tokens },
      upstreamMs: call.upstreamMs,
      reportedPromptTokens: prompt_tokens,
    };
  }

  /** A chat-like call; output that does not parse is retried once when the type asks for it, and billed either way. */
  async function callChat(
    request: NativeChatRequest,
    body: ChatCompletionRequest,
    model: string,
    callOptions: CallOptions,
  ): Promise<Produced<unknown>> {
    const task = chatTask(request.type);
    const attempts = task.retryInvalidOutput ? 2 : 1;
    let usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let upstreamMs = 0;
    let problem = "";
    let reportedPromptTokens: number | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) callOptions.onRetry?.({ attempt, reason: "invalid output", delayMs: 0 });
      const call = await provider.chatCompletion(body, callOptions);
      observeUpstream(model, call.upstreamMs);
      upstreamMs += call.upstreamMs;
      usage = addUsage(usage, call.value.usage);
      reportedPromptTokens = call.value.usage?.prompt_tokens;
      const parsed = task.parse(call.value, request);
      if (parsed.ok) {
        return { value: parsed.output, model, provider: nameOf(model), usage, upstreamMs, reportedPromptTokens };
      }
      problem = parsed.problem;
    }
    throw new AppError("upstream_invalid_output", `${problem} (after ${attempts} attempts)`);
  }

  return nativeJob;
}

/**
 * The chat body a native request sends. A metered caller's request that names no max_tokens is capped at the
 * default, so that what its reservation holds is a bound on what the call can spend.
 */
function nativeChatBody(caller: Caller, request: NativeChatRequest, model: string): ChatCompletionRequest {
  const body = chatTask(request.type).build(request, model);
  return isMetered(caller) && body.max_tokens === undefined ? { ...body, max_tokens: defaultMaxOutputTokens } : body;
}

/** The table is keyed by type; TypeScript cannot follow that correlation, so it is restated once, here. */
function chatTask(type: Exclude<RequestType, "embed">): ChatTask<Exclude<RequestType, "embed">> {
  return taskTypes[type] as unknown as ChatTask<Exclude<RequestType, "embed">>;
}

function addUsage(total: TokenUsage, usage: Usage | undefined): TokenUsage {
  if (!usage) return total;
  return {
    prompt_tokens: total.prompt_tokens + usage.prompt_tokens,
    completion_tokens: total.completion_tokens + usage.completion_tokens,
    total_tokens: total.total_tokens + usage.total_tokens,
  };
}
