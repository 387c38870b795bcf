import { createRequire } from "node:module";
import type * as GptTokenizer from "gpt-tokenizer";
import type { ChatMessage } from "./providers/provider.ts";

/**
 * Token counting with OpenAI's own tokenizer (o200k, as gpt-4o and later use). The mock upstream counts its usage
 * with it, and the gateway uses it where an upstream reports none and to estimate a request before sending it.
 */

/**
 * Loaded on first use (synchronously, through its CommonJS build): the o200k tables take ~40 MB and ~150 ms, and a
 * service whose callers have no token limit or budget, talking to an upstream that reports usage, never needs them.
 */
let tokenizer: typeof GptTokenizer | undefined;
export function tokenizerModule(): typeof GptTokenizer {
  tokenizer ??= createRequire(import.meta.url)("gpt-tokenizer") as typeof GptTokenizer;
  return tokenizer;
}

/** User text may contain strings like `<|endoftext|>`; count them as plain text instead of throwing. */
export const plainText = { disallowedSpecial: new Set<string>() };

export function countTextTokens(text: string): number {
  return tokenizerModule().encode(text, plainText).length;
}

/** The text of a message's content: a string, or the text parts of a content-part array. */
export function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let text = "";
  for (const part of content) {
    if (part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") {
      text += (part as { text: string }).text;
    }
  }
  return text;
}

/** Prompt tokens the way OpenAI's chat format counts them (per-message framing included). */
export function countPromptTokens(messages: readonly ChatMessage[], tools?: unknown): number {
  const chat = messages.map((message) => {
    let content = messageText(message.content);
    // Tool calls an assistant made earlier are part of the prompt too.
    if (message.tool_calls !== undefined) content += JSON.stringify(message.tool_calls);
    return typeof message.name === "string"
      ? { role: message.role, name: message.name, content }
      : { role: message.role, content };
  });
  let tokens = tokenizerModule().encodeChat(chat, "gpt-4o", plainText).length;
  if (tools !== undefined) tokens += countTextTokens(JSON.stringify(tools));
  return tokens;
}
