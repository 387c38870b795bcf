/**
 * The mock model's answers in Anthropic's Messages shape: the request mapped onto what `generate()` reads, and the
 * Generation dressed as a `Message` or as the events of its stream. For requests already checked by the mock
 * upstream's validator; the prompt's usage (counted and split by the prompt cache) comes from messages-prompt.ts.
 */
import type {
  ContentBlockParam,
  Message,
  MessageCreateParamsBase,
  MessageDeltaUsage,
  RawMessageStreamEvent,
  StopReason,
  TextBlock,
  ThinkingBlock,
  ToolUseBlock,
  Usage,
} from "@anthropic-ai/sdk/resources/messages";
import { isRecord } from "../../is-record.ts";
import { countTextTokens } from "../../tokens.ts";
import type { ChatCompletionRequest, ChatMessage } from "../provider.ts";
import { generate } from "./generate.ts";
import type { PromptUsage } from "./messages-prompt.ts";
import { createRandom, hashString, pick } from "./seeded.ts";
import { userWords, vocabulary } from "./text.ts";

/** A stream event: Anthropic's typed ones, and the `ping` it sends after the first block starts. */
export type MessageStreamEvent = RawMessageStreamEvent | { type: "ping" };

type AnswerBlock = ThinkingBlock | TextBlock | ToolUseBlock;

/** What the model answers, before it is dressed as a whole message or as events. */
interface MessagePlan {
  content: AnswerBlock[];
  stopReason: StopReason;
  stopSequence: string | null;
  outputTokens: number;
  /** Tokens of the thinking block, when there is one (usage's `output_tokens_details`). */
  thinkingTokens: number | undefined;
}

// Ids are unique per answer, like Anthropic's (msg_01 + 22 characters); only the content is deterministic.
const idPrefix = Math.floor(Math.random() * 36 ** 6)
  .toString(36)
  .padStart(6, "0");
let idCounter = 0;
const nextId = (prefix: string) => `${prefix}${idPrefix}${(++idCounter).toString(36).padStart(16, "0")}`;

/** The text of a content block for the model's "reading": text, tool results' text, a tool call's input. */
function blockText(block: ContentBlockParam): string {
  switch (block.type) {
    case "text":
      return block.text;
    case "tool_use":
      return `${block.name} ${JSON.stringify(block.input)}`;
    case "tool_result":
      if (typeof block.content === "string") return block.content;
      return (block.content ?? []).map((part) => (part.type === "text" ? part.text : "")).join("\n");
    default:
      return "";
  }
}

const contentText = (content: string | readonly ContentBlockParam[]) =>
  typeof content === "string" ? content : content.map(blockText).join("\n");

/**
 * The Anthropic request as `generate()` reads it: the system prompt and the messages' text for the words, custom
 * tools as functions, `tool_choice` any/tool as required/that function, `output_config.format` as a JSON schema,
 * and the tokens left for the answer.
 */
function toChatRequest(body: MessageCreateParamsBase, maxTokens: number): ChatCompletionRequest {
  const messages: ChatMessage[] = [];
  const system = body.system === undefined ? "" : contentText(body.system);
  if (system !== "") messages.push({ role: "system", content: system });
  for (const message of body.messages) messages.push({ role: message.role, content: contentText(message.content) });
  const tools = (body.tools ?? []).flatMap((tool) =>
    "input_schema" in tool ? [{ type: "function", function: { name: tool.name, parameters: tool.input_schema } }] : [],
  );
  const choice = body.tool_choice;
  const format = body.output_config?.format;
  return {
    model: body.model,
    messages,
    max_tokens: maxTokens,
    ...(tools.length > 0 ? { tools } : {}),
    ...(choice?.type === "any" ? { tool_choice: "required" } : {}),
    ...(choice?.type === "tool" ? { tool_choice: { type: "function", function: { name: choice.name } } } : {}),
    ...(format
      ? { response_format: { type: "json_schema", json_schema: { name: "output", schema: format.schema } } }
      : {}),
  };
}

/** A deterministic thinking text and signature for the request: same request, same thinking. */
function thinkingFor(chat: ChatCompletionRequest): { thinking: string; signature: string } {
  const random = createRandom(hashString(JSON.stringify(chat.messages), 0x7f4a7c15));
  const words = userWords(chat.messages);
  const topic = words.length > 0 ? words.slice(0, 6).join(" ") : pick(vocabulary, random);
  const steps = Array.from({ length: 3 + Math.floor(random() * 4) }, () => pick(vocabulary, random));
  const signature = Buffer.from(Array.from({ length: 96 }, () => Math.floor(random() * 256))).toString("base64");
  return { thinking: `The request is about ${topic}. Plan: ${steps.join(", ")}; then answer.`, signature };
}

/** The text cut before the earliest stop sequence it contains, and that sequence. */
function applyStopSequences(text: string, sequences: readonly string[]): { text: string; sequence: string | null } {
  let cut = -1;
  let sequence: string | null = null;
  for (const candidate of sequences) {
    const at = candidate === "" ? -1 : text.indexOf(candidate);
    if (at !== -1 && (cut === -1 || at < cut)) {
      cut = at;
      sequence = candidate;
    }
  }
  return sequence === null ? { text, sequence } : { text: text.slice(0, cut), sequence };
}

function planMessage(body: MessageCreateParamsBase): MessagePlan {
  const content: AnswerBlock[] = [];
  const thinkingType = body.thinking?.type;
  let thinkingTokens: number | undefined;
  let chat = toChatRequest(body, body.max_tokens);
  const planned = thinkingType === "enabled" || thinkingType === "adaptive" ? thinkingFor(chat) : undefined;
  const tokens = planned ? countTextTokens(planned.thinking) : 0;
  // Adaptive thinking is skipped when max_tokens leaves no room for it (enabled's budget always leaves room).
  if (planned && (thinkingType === "enabled" || tokens < body.max_tokens)) {
    const { thinking, signature } = planned;
    thinkingTokens = tokens;
    const display = body.thinking && "display" in body.thinking ? body.thinking.display : undefined;
    content.push({ type: "thinking", thinking: display === "omitted" ? "" : thinking, signature });
    // Thinking counts toward max_tokens: the answer gets what is left.
    chat = toChatRequest(body, Math.max(1, body.max_tokens - thinkingTokens));
  }
  const choice = generate(chat).choices[0];
  const call = choice?.toolCalls?.[0];
  let outputTokens = (thinkingTokens ?? 0) + (choice?.completionTokens ?? 0);
  if (call) {
    const input: unknown = JSON.parse(call.function.arguments);
    content.push({
      type: "tool_use",
      id: nextId("toolu_01"),
      name: call.function.name,
      input: isRecord(input) ? input : {},
      caller: { type: "direct" },
    });
    return { content, stopReason: "tool_use", stopSequence: null, outputTokens, thinkingTokens };
  }
  const stopped = applyStopSequences(choice?.content ?? "", body.stop_sequences ?? []);
  content.push({ type: "text", text: stopped.text, citations: null });
  if (stopped.sequence !== null) {
    // The model generated the stop sequence too: it is billed, not returned.
    outputTokens = (thinkingTokens ?? 0) + countTextTokens(stopped.text + stopped.sequence);
    return { content, stopReason: "stop_sequence", stopSequence: stopped.sequence, outputTokens, thinkingTokens };
  }
  const stopReason = choice?.finishReason === "length" ? "max_tokens" : "end_turn";
  return { content, stopReason, stopSequence: null, outputTokens, thinkingTokens };
}

function usageOf(body: MessageCreateParamsBase, prompt: PromptUsage, plan: MessagePlan): Usage {
  return {
    input_tokens: prompt.input,
    cache_creation_input_tokens: prompt.cacheCreation5m + prompt.cacheCreation1h,
    cache_read_input_tokens: prompt.cacheRead,
    cache_creation: {
      ephemeral_5m_input_tokens: prompt.cacheCreation5m,
      ephemeral_1h_input_tokens: prompt.cacheCreation1h,
    },
    output_tokens: plan.outputTokens,
    output_tokens_details: plan.thinkingTokens === undefined ? null : { thinking_tokens: plan.thinkingTokens },
    server_tool_use: null,
    service_tier: "standard",
    inference_geo: typeof body.inference_geo === "string" ? body.inference_geo : null,
    speed: body.speed === "fast" ? "fast" : "standard",
  };
}

function messageOf(body: MessageCreateParamsBase, plan: MessagePlan, usage: Usage): Message {
  return {
    id: nextId("msg_01"),
    type: "message",
    role: "assistant",
    model: body.model,
    content: plan.content,
    stop_reason: plan.stopReason,
    stop_sequence: plan.stopSequence,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage,
  };
}

/** A whole `Message` for a request already checked by the validator. */
export function createMessage(body: MessageCreateParamsBase, prompt: PromptUsage): Message {
  const plan = planMessage(body);
  return messageOf(body, plan, usageOf(body, prompt, plan));
}

/** Pieces of a couple of words each (a space leads a word, as tokens do), so a text arrives in several deltas. */
function splitText(text: string): string[] {
  const words = text.match(/\s*\S+|\s+/g) ?? [];
  const pieces: string[] = [];
  for (let i = 0; i < words.length; i += 2) pieces.push(words.slice(i, i + 2).join(""));
  return pieces;
}

/** A tool input's JSON in pieces of up to 16 code points (never splitting a surrogate pair). */
function splitJson(json: string): string[] {
  const chars = Array.from(json);
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += 16) pieces.push(chars.slice(i, i + 16).join(""));
  return pieces;
}

/** The block's events from its start to its stop, the start carrying the block empty, as Anthropic streams it. */
function blockEvents(block: AnswerBlock, index: number): MessageStreamEvent[] {
  const events: MessageStreamEvent[] = [];
  const delta = (value: Extract<RawMessageStreamEvent, { type: "content_block_delta" }>["delta"]) =>
    events.push({ type: "content_block_delta", index, delta: value });
  switch (block.type) {
    case "thinking":
      events.push({ type: "content_block_start", index, content_block: { ...block, thinking: "", signature: "" } });
      for (const piece of splitText(block.thinking)) delta({ type: "thinking_delta", thinking: piece });
      delta({ type: "signature_delta", signature: block.signature });
      break;
    case "text":
      events.push({ type: "content_block_start", index, content_block: { ...block, text: "" } });
      for (const piece of splitText(block.text)) delta({ type: "text_delta", text: piece });
      break;
    case "tool_use":
      events.push({ type: "content_block_start", index, content_block: { ...block, input: {} } });
      // Anthropic opens a tool's input with an empty piece.
      for (const piece of ["", ...splitJson(JSON.stringify(block.input))]) {
        delta({ type: "input_json_delta", partial_json: piece });
      }
      break;
  }
  events.push({ type: "content_block_stop", index });
  return events;
}

/**
 * The stream of a request already checked by the validator: `message_start` (no content, no stop reason, one output
 * token), each block's events (a `ping` after the first block's start), `message_delta` with the stop reason and
 * the final usage, `message_stop`.
 */
export function createMessageEvents(body: MessageCreateParamsBase, prompt: PromptUsage): MessageStreamEvent[] {
  const plan = planMessage(body);
  const usage = usageOf(body, prompt, plan);
  const message = messageOf(body, plan, usage);
  const events: MessageStreamEvent[] = [
    {
      type: "message_start",
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1, output_tokens_details: null },
      },
    },
  ];
  for (const [index, block] of plan.content.entries()) {
    const [start, ...rest] = blockEvents(block, index);
    if (start) events.push(start);
    if (index === 0) events.push({ type: "ping" });
    events.push(...rest);
  }
  const deltaUsage: MessageDeltaUsage = {
    input_tokens: usage.input_tokens,
    cache_creation_input_tokens: usage.cache_creation_input_tokens,
    cache_read_input_tokens: usage.cache_read_input_tokens,
    output_tokens: usage.output_tokens,
    output_tokens_details: usage.output_tokens_details,
    server_tool_use: null,
  };
  events.push(
    {
      type: "message_delta",
      delta: { stop_reason: plan.stopReason, stop_sequence: plan.stopSequence, stop_details: null, container: null },
      usage: deltaUsage,
    },
    { type: "message_stop" },
  );
  return events;
}
