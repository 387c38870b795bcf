import type { RequestSource } from "../db/types.ts";
import { defaultMaxOutputTokens } from "../limits/estimate.ts";
import type {
  ChatCompletion,
  ChatCompletionRequest,
  EmbeddingRequest,
  EmbeddingResponse,
  Provider,
} from "../providers/provider.ts";
import { countPromptTokens, countTextTokens } from "../tokens.ts";
import type { Caller, CallContext, Job, TokenUsage } from "./job.ts";
import { isMetered } from "./reservation.ts";

/** Fields that change nothing in the answer: left out of the cache key and of the stored options. */
const transportFields = new Set([
  "model",
  "messages",
  "input",
  "stream",
  "stream_options",
  "user",
  "metadata",
  "store",
]);

/**
 * The OpenAI-compatible API's way in: a `/v1` body as a Job, sent upstream as the client gave it (the answer is
 * OpenAI's own object).
 */
export function createOpenAIJobs(deps: {
  provider: Provider;
  observeUpstream(model: string, upstreamMs: number): void;
}) {
  const { provider, observeUpstream } = deps;
  const nameOf = (model: string) => provider.nameOf?.(model) ?? provider.name;

  /**
   * A chat completion's job and the body it sends: as the client gave it, but for a metered caller that names
   * neither max_completion_tokens nor max_tokens, capped at the default (OpenAI's max_completion_tokens, which every
   * one of its models takes), so that the reservation bounds what the call can spend. The cache key and the record
   * keep the body as asked.
   */
  function chat(caller: Caller, asked: ChatCompletionRequest, context: CallContext, source: RequestSource = "openai") {
    const body = cappedChatBody(caller, asked);
    const maxOutput = body.max_completion_tokens ?? body.max_tokens ?? defaultMaxOutputTokens;
    const choices = typeof body.n === "number" && body.n > 1 ? body.n : 1;
    const job: Job<ChatCompletion> = {
      estimate: () => ({ body, maxOutputTokens: maxOutput * choices }),
      caller,
      context,
      type: "chat",
      source,
      model: body.model,
      input: asked.messages,
      options: openAIOptions(asked),
      metadata: {},
      cacheable: true,
      outputOf: completionOutput,
      call: async (model, callOptions) => {
        const call = await provider.chatCompletion(model === body.model ? body : { ...body, model }, callOptions);
        observeUpstream(model, call.upstreamMs);
        const usage =
          call.value.usage ?? countedUsage(body, call.value.choices.map((c) => c.message.content ?? "").join(""));
        return {
          value: call.value,
          model: call.value.model || model,
          provider: nameOf(model),
          usage,
          upstreamMs: call.upstreamMs,
          reportedPromptTokens: call.value.usage?.prompt_tokens,
        };
      },
    };
    return { job, body };
  }

  function embeddings(caller: Caller, body: EmbeddingRequest, context: CallContext): Job<EmbeddingResponse> {
    return {
      estimate: () => ({ body: { input: body.input }, maxOutputTokens: 0 }),
      caller,
      context,
      type: "embed",
      source: "openai",
      model: body.model,
      input: body.input,
      options: openAIOptions(body),
      metadata: {},
      cacheable: true,
      outputOf: embeddingOutput,
      call: async (model, callOptions) => {
        const call = await provider.embeddings(model === body.model ? body : { ...body, model }, callOptions);
        observeUpstream(model, call.upstreamMs);
        const { prompt_tokens, total_tokens } = call.value.usage;
        return {
          value: call.value,
          model,
          provider: nameOf(model),
          usage: { prompt_tokens, completion_tokens: 0, total_tokens },
          upstreamMs: call.upstreamMs,
          reportedPromptTokens: prompt_tokens,
        };
      },
    };
  }

  return { chat, embeddings };
}

function cappedChatBody(caller: Caller, body: ChatCompletionRequest): ChatCompletionRequest {
  if (!isMetered(caller) || typeof body.max_completion_tokens === "number" || typeof body.max_tokens === "number") {
    return body;
  }
  return { ...body, max_completion_tokens: defaultMaxOutputTokens };
}

function openAIOptions(body: Record<string, unknown>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (!transportFields.has(key)) options[key] = value;
  return options;
}

/** Usage counted with the tokenizer, for an upstream that reports none. */
function countedUsage(body: ChatCompletionRequest, answer: string): TokenUsage {
  const prompt = countPromptTokens(body.messages, body.tools);
  const completion = countTextTokens(answer);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A completion as stored: its text when it is one plain answer, else the assistant messages. */
function completionOutput(completion: ChatCompletion): unknown {
  const [only, ...others] = completion.choices;
  if (only && others.length === 0 && !only.message.tool_calls) return only.message.content;
  return completion.choices.map((choice) => choice.message);
}

/** Embeddings as stored: one vector like the native API's, or all of them. */
function embeddingOutput(response: EmbeddingResponse): unknown {
  const vectors = response.data.map((item) => item.embedding);
  const dimensions = Array.isArray(vectors[0]) ? vectors[0].length : null;
  return vectors.length === 1 ? { embedding: vectors[0], dimensions } : { embeddings: vectors, dimensions };
}
