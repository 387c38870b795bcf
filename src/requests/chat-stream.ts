import type { ChatCompletion, ChatCompletionChunk, Usage } from "../providers/provider.ts";

/**
 * Between a stream of chunks and one completion, both ways: a streamed answer is gathered into the completion it
 * amounts to (for the record and the cache), and a cached completion is replayed as the chunks a stream would send.
 */

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

interface GatheredToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}

interface GatheredChoice {
  content: string;
  refusal: string;
  toolCalls: GatheredToolCall[];
  finishReason: string | null;
}

export interface ChunkGatherer {
  add(chunk: ChatCompletionChunk): void;
  /** Text produced so far, all choices together (for counting the tokens of a partial answer). */
  text(): string;
  usage(): Usage | undefined;
  /** The completion the chunks amount to; usage as given, or as the caller counted it. */
  completion(usage: Usage): ChatCompletion;
}

export function createChunkGatherer(): ChunkGatherer {
  const choices: GatheredChoice[] = [];
  let first: ChatCompletionChunk | undefined;
  let usage: Usage | undefined;

  return {
    add(chunk) {
      first ??= chunk;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        let gathered = choices[choice.index];
        if (!gathered) {
          gathered = { content: "", refusal: "", toolCalls: [], finishReason: null };
          choices[choice.index] = gathered;
        }
        const delta = choice.delta;
        if (typeof delta.content === "string") gathered.content += delta.content;
        if (typeof delta.refusal === "string") gathered.refusal += delta.refusal;
        if (Array.isArray(delta.tool_calls)) {
          for (const call of delta.tool_calls as ToolCallDelta[]) {
            let target = gathered.toolCalls[call.index];
            if (!target) {
              target = { id: "", type: "function", function: { name: "", arguments: "" } };
              gathered.toolCalls[call.index] = target;
            }
            if (call.id) target.id = call.id;
            if (call.type) target.type = call.type;
            if (call.function?.name) target.function.name += call.function.name;
            if (call.function?.arguments) target.function.arguments += call.function.arguments;
          }
        }
        if (choice.finish_reason) gathered.finishReason = choice.finish_reason;
      }
    },
    text() {
      return choices
        .map((choice) => choice.content + choice.toolCalls.map((c) => c.function.arguments).join(""))
        .join("");
    },
    usage() {
      return usage;
    },
    completion(finalUsage) {
      const completion: ChatCompletion = {
        id: first?.id ?? "chatcmpl-unknown",
        object: "chat.completion",
        created: first?.created ?? Math.floor(Date.now() / 1000),
        model: first?.model ?? "unknown",
        choices: choices.map((choice, index) => ({
          index,
          message: {
            role: "assistant" as const,
            content: choice.content || (choice.toolCalls.length ? null : ""),
            refusal: choice.refusal || null,
            ...(choice.toolCalls.length ? { tool_calls: choice.toolCalls } : {}),
          },
          logprobs: null,
          finish_reason: choice.finishReason,
        })),
        usage: finalUsage,
      };
      if (first?.system_fingerprint !== undefined) completion.system_fingerprint = first.system_fingerprint;
      if (first?.service_tier !== undefined) completion.service_tier = first.service_tier;
      return completion;
    },
  };
}

/** Pieces of about `size` characters, cut after a space where one is near, so a replay streams like a model. */
function pieces(text: string, size = 24): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    const space = text.lastIndexOf(" ", end);
    if (end < text.length && space > start) end = space + 1;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

/** The chunks a stream of this completion would have sent, usage chunk last. */
export function completionToChunks(completion: ChatCompletion): ChatCompletionChunk[] {
  const base = {
    id: completion.id,
    object: "chat.completion.chunk" as const,
    created: completion.created,
    model: completion.model,
    ...(completion.system_fingerprint !== undefined ? { system_fingerprint: completion.system_fingerprint } : {}),
  };
  const chunks: ChatCompletionChunk[] = [];
  const chunk = (index: number, delta: ChatCompletionChunk["choices"][number]["delta"], finish: string | null) =>
    chunks.push({ ...base, choices: [{ index, delta, logprobs: null, finish_reason: finish }] });

  for (const choice of completion.choices) {
    const {
      content,
      refusal,
      tool_calls: toolCalls,
    } = choice.message as {
      content: string | null;
      refusal?: string | null;
      tool_calls?: GatheredToolCall[];
    };
    chunk(choice.index, { role: "assistant", content: "", refusal: null }, null);
    for (const piece of pieces(content ?? "")) chunk(choice.index, { content: piece }, null);
    if (refusal) chunk(choice.index, { refusal }, null);
    toolCalls?.forEach((call, index) => {
      chunk(choice.index, { tool_calls: [{ index, id: call.id, type: call.type, function: call.function }] }, null);
    });
    chunk(choice.index, {}, choice.finish_reason ?? "stop");
  }
  chunks.push({ ...base, choices: [], usage: completion.usage ?? null });
  return chunks;
}

/** Whether a chunk is the usage-only chunk that ends a stream asked with include_usage. */
export function isUsageChunk(chunk: ChatCompletionChunk): boolean {
  return chunk.choices.length === 0 && chunk.usage !== undefined && chunk.usage !== null;
}
