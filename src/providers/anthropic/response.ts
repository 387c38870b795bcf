/**
 * Anthropic's Message → OpenAI's chat completion. Text blocks are the content, tool_use blocks the tool calls,
 * thinking blocks ride along as the `thinking_blocks` extension (complete, so a client can send them back, which
 * Anthropic requires with tools) and as `reasoning_content`. With structured output (request.ts), the forced tool's
 * input is the answer: it becomes the content, and the call is no tool call for the client to run.
 */
import type { ContentBlock, Message } from "@anthropic-ai/sdk/resources/messages";
import type { ChatCompletion } from "../provider.ts";
import { finishReasonOf, structuredFinishReason, type ThinkingBlockOut, usageOf } from "./mappings.ts";

export interface TranslationOptions {
  /** The model name the caller used, which the answer carries (not Anthropic's). */
  model: string;
  /** From toAnthropicRequest: the forced tool whose input is the answer. */
  structuredOutput?: { tool: string };
}

export interface ToolCallOut {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

type AssistantMessage = ChatCompletion["choices"][number]["message"];

interface ReadContent {
  texts: string[];
  toolCalls: ToolCallOut[];
  thinkingBlocks: ThinkingBlockOut[];
  /** The structured answer (the forced tool's input, as JSON), when there is one. */
  structured?: string;
}

export function fromAnthropicMessage(message: Message, options: TranslationOptions): ChatCompletion {
  const read = readContent(message.content, options.structuredOutput?.tool);
  const finishReason =
    read.structured === undefined ? finishReasonOf(message.stop_reason) : structuredFinishReason(message.stop_reason);
  return {
    id: message.id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: options.model,
    choices: [{ index: 0, message: assistantMessage(read), finish_reason: finishReason, logprobs: null }],
    usage: usageOf(message.usage),
  };
}

function readContent(blocks: readonly ContentBlock[], structuredTool: string | undefined): ReadContent {
  const read: ReadContent = { texts: [], toolCalls: [], thinkingBlocks: [] };
  for (const block of blocks) {
    switch (block.type) {
      case "text":
        read.texts.push(block.text);
        break;
      case "tool_use":
        if (block.name === structuredTool && read.structured === undefined)
          read.structured = JSON.stringify(block.input);
        else read.toolCalls.push(toolCallOf(block.id, block.name, block.input));
        break;
      case "thinking":
        read.thinkingBlocks.push({ type: "thinking", thinking: block.thinking, signature: block.signature });
        break;
      case "redacted_thinking":
        read.thinkingBlocks.push({ type: "redacted_thinking", data: block.data });
        break;
      // Server tools' blocks (web search, code execution…) have no OpenAI shape; their results show in the text.
    }
  }
  return read;
}

const toolCallOf = (id: string, name: string, input: unknown): ToolCallOut => ({
  id,
  type: "function",
  function: { name, arguments: JSON.stringify(input ?? {}) },
});

/**
 * Text blocks join without a separator (Anthropic splits one text around citations). No text: null beside tool
 * calls, as OpenAI answers, and "" otherwise. A structured answer replaces the text: with a forced tool Claude
 * writes none, and when the call is missing (a refusal) the text stays, to say why.
 */
function assistantMessage(read: ReadContent): AssistantMessage {
  const text = read.texts.length ? read.texts.join("") : read.toolCalls.length ? null : "";
  const message: AssistantMessage = { role: "assistant", content: read.structured ?? text, refusal: null };
  if (read.toolCalls.length) message.tool_calls = read.toolCalls;
  if (read.thinkingBlocks.length) {
    message.reasoning_content = reasoningOf(read.thinkingBlocks);
    message.thinking_blocks = read.thinkingBlocks;
  }
  return message;
}

/** The readable thinking, blocks apart by a blank line, as the stream gives it; redacted blocks have none. */
function reasoningOf(blocks: readonly ThinkingBlockOut[]): string {
  return blocks.flatMap((block) => (block.type === "thinking" && block.thinking ? [block.thinking] : [])).join("\n\n");
}
