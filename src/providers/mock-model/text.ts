/** The mock model's prose: words from a fixed list mixed with the user's own, so answers visibly relate to a prompt. */
import { messageText } from "../../tokens.ts";
import type { ChatMessage } from "../provider.ts";
import { pick } from "./seeded.ts";

export const vocabulary = [
  "clear",
  "concise",
  "answer",
  "model",
  "request",
  "result",
  "context",
  "simple",
  "steady",
  "useful",
  "careful",
  "detail",
  "summary",
  "signal",
  "pattern",
  "value",
  "system",
  "reply",
  "example",
  "outline",
  "insight",
  "balance",
  "option",
  "measure",
  "focus",
  "brief",
  "logic",
  "evidence",
  "point",
  "theme",
  "question",
  "approach",
] as const;

export function userWords(messages: readonly ChatMessage[]): string[] {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== "user") continue;
    return (
      messageText(message.content)
        .match(/[\p{L}\p{N}]{3,}/gu)
        ?.slice(0, 64) ?? []
    );
  }
  return [];
}

export function mockText(random: () => number, words: readonly string[]): string {
  const count = 8 + Math.floor(random() * 17);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    // Alternate between the user's own words and the fixed list, so answers visibly relate to their prompt.
    parts.push(words.length > 0 && random() < 0.35 ? pick(words, random) : pick(vocabulary, random));
  }
  return `Mock answer: ${parts.join(" ")}.`;
}
