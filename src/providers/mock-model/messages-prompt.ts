/**
 * An Anthropic prompt counted the way the mock upstream bills it: block by block in the order Anthropic caches a
 * prompt (tools, system, messages), so the tokens up to each `cache_control` breakpoint are known, and a prompt cache
 * that splits a request's input tokens into written, read and uncached ones.
 */
import { createHash } from "node:crypto";
import type {
  CacheControlEphemeral,
  ContentBlockParam,
  MessageParam,
  TextBlockParam,
} from "@anthropic-ai/sdk/resources/messages";
import { isRecord } from "../../is-record.ts";
import { countTextTokens } from "../../tokens.ts";

/** The prompt up to and including a block marked with `cache_control`. */
export interface CacheBreakpoint {
  /** A hash of the model and of everything up to the block: the cache key. */
  prefix: string;
  tokens: number;
  ttl: "5m" | "1h";
}

export interface PromptCount {
  /** Every token of the prompt: what count_tokens answers, and the sum of the three parts of an answer's usage. */
  total: number;
  /** In prompt order (so by growing `tokens`). */
  breakpoints: CacheBreakpoint[];
}

/** A request's input tokens as its usage reports them. */
export interface PromptUsage {
  input: number;
  cacheCreation5m: number;
  cacheCreation1h: number;
  cacheRead: number;
}

/** The parts of a Messages (or count_tokens) request that make its prompt. */
export interface PromptParts {
  model: string;
  messages: readonly MessageParam[];
  system?: string | readonly TextBlockParam[];
  tools?: readonly unknown[];
  cache_control?: CacheControlEphemeral | null;
}

// Fixed costs for what the mock cannot tokenize; Anthropic bills an image by its pixels, a PDF by its pages.
const imageTokens = 1000;
const documentTokens = 1500;
// Role framing per message, as chat formats add.
const messageFraming = 3;

type Counter = (text: string) => number;

interface Segment {
  key: string;
  tokens: number;
  cacheControl: CacheControlEphemeral | null | undefined;
}

function blockTokens(block: ContentBlockParam, count: Counter): number {
  switch (block.type) {
    case "text":
      return count(block.text);
    case "image":
      return imageTokens;
    case "document": {
      const source = block.source;
      if (source.type === "text") return count(source.data);
      if (source.type === "content") {
        const parts = typeof source.content === "string" ? [source.content] : source.content;
        return parts.reduce(
          (sum, part) => sum + (typeof part === "string" || part.type !== "text" ? 0 : count(part.text)),
          0,
        );
      }
      return documentTokens;
    }
    case "tool_use":
      return count(block.name) + count(JSON.stringify(block.input));
    case "tool_result": {
      if (typeof block.content === "string") return count(block.content);
      return (block.content ?? []).reduce(
        (sum, part) => sum + (part.type === "text" ? count(part.text) : part.type === "image" ? imageTokens : 0),
        0,
      );
    }
    case "thinking":
    case "redacted_thinking":
      // Thinking from earlier turns is stripped from the context: it costs no input tokens.
      return 0;
    default:
      return count(JSON.stringify(block));
  }
}

/** The block as a cache key: its content without its own `cache_control` (marking a block does not change it). */
function keyOf(value: unknown): string {
  if (!isRecord(value)) return JSON.stringify(value);
  const { cache_control: _marker, ...rest } = value;
  return JSON.stringify(rest);
}

function segmentsOf(parts: PromptParts, count: Counter): Segment[] {
  const segments: Segment[] = [];
  for (const tool of parts.tools ?? []) {
    const key = keyOf(tool);
    segments.push({ key, tokens: count(key), cacheControl: isRecord(tool) ? cacheControlOf(tool) : undefined });
  }
  if (typeof parts.system === "string") {
    segments.push({ key: JSON.stringify(parts.system), tokens: count(parts.system), cacheControl: undefined });
  } else {
    for (const block of parts.system ?? []) {
      segments.push({ key: keyOf(block), tokens: count(block.text), cacheControl: block.cache_control });
    }
  }
  for (const message of parts.messages) {
    const blocks: readonly ContentBlockParam[] =
      typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
    const start = segments.length;
    for (const block of blocks) {
      const marker = "cache_control" in block ? block.cache_control : undefined;
      segments.push({
        key: `${message.role}:${keyOf(block)}`,
        tokens: blockTokens(block, count),
        cacheControl: marker,
      });
    }
    const first = segments[start];
    if (first) first.tokens += messageFraming;
    else segments.push({ key: `${message.role}:[]`, tokens: messageFraming, cacheControl: undefined });
  }
  // Top-level cache_control marks the last block of the prompt.
  const last = segments.at(-1);
  if (last && parts.cache_control && !last.cacheControl) last.cacheControl = parts.cache_control;
  return segments;
}

function cacheControlOf(tool: Record<string, unknown>): CacheControlEphemeral | undefined {
  const marker = tool.cache_control;
  return isRecord(marker) ? { type: "ephemeral", ...(marker.ttl === "1h" ? { ttl: "1h" } : {}) } : undefined;
}

/** Counts are cached like generations: benchmarks send the same few prompts again and again. */
const countCache = new Map<string, PromptCount>();
const countCacheSize = 2000;

/**
 * The prompt's tokens and its cache breakpoints. `bytesPerToken` (the mock's knob) counts one token per that many
 * UTF-8 bytes instead of with OpenAI's tokenizer, plus the same framing.
 */
export function countPrompt(parts: PromptParts, bytesPerToken: number | null): PromptCount {
  const cacheKey = JSON.stringify([
    parts.model,
    parts.tools,
    parts.system,
    parts.messages,
    parts.cache_control,
    bytesPerToken,
  ]);
  const cached = countCache.get(cacheKey);
  if (cached) return cached;
  const count: Counter =
    bytesPerToken === null ? countTextTokens : (text) => Math.ceil(Buffer.byteLength(text) / bytesPerToken);
  const hash = createHash("sha256").update(parts.model);
  const breakpoints: CacheBreakpoint[] = [];
  let total = 0;
  for (const segment of segmentsOf(parts, count)) {
    hash.update(`\u0000${segment.key}`);
    total += segment.tokens;
    if (segment.cacheControl) {
      const ttl = segment.cacheControl.ttl === "1h" ? "1h" : "5m";
      breakpoints.push({ prefix: hash.copy().digest("base64url"), tokens: total, ttl });
    }
  }
  const result = { total, breakpoints };
  if (countCache.size >= countCacheSize) {
    const oldest = countCache.keys().next().value;
    if (oldest !== undefined) countCache.delete(oldest);
  }
  countCache.set(cacheKey, result);
  return result;
}

const ttlMs = { "5m": 5 * 60_000, "1h": 60 * 60_000 } as const;

/**
 * What one upstream has cached: prefixes and when they expire. A request reads the longest prefix still cached
 * (`cache_read_input_tokens`), writes the rest up to its last breakpoint (`cache_creation_input_tokens`), and every
 * breakpoint it reaches is cached, or its lifetime refreshed, from then on.
 */
export class PromptCache {
  readonly #expiries = new Map<string, number>();

  constructor(readonly maxEntries = 10_000) {}

  use(count: PromptCount, now = Date.now()): PromptUsage {
    let read = 0;
    for (const breakpoint of count.breakpoints) {
      const expiry = this.#expiries.get(breakpoint.prefix);
      if (expiry !== undefined && expiry > now) read = breakpoint.tokens;
    }
    const usage: PromptUsage = { input: 0, cacheCreation5m: 0, cacheCreation1h: 0, cacheRead: read };
    let covered = read;
    for (const breakpoint of count.breakpoints) {
      if (breakpoint.tokens > covered) {
        const written = breakpoint.tokens - covered;
        if (breakpoint.ttl === "1h") usage.cacheCreation1h += written;
        else usage.cacheCreation5m += written;
        covered = breakpoint.tokens;
      }
      this.#remember(breakpoint.prefix, now + ttlMs[breakpoint.ttl]);
    }
    usage.input = count.total - covered;
    return usage;
  }

  clear(): void {
    this.#expiries.clear();
  }

  #remember(prefix: string, expiry: number): void {
    const previous = this.#expiries.get(prefix) ?? 0;
    this.#expiries.delete(prefix); // re-inserted last: the map's order is the eviction order
    if (this.#expiries.size >= this.maxEntries) {
      const oldest = this.#expiries.keys().next().value;
      if (oldest !== undefined) this.#expiries.delete(oldest);
    }
    this.#expiries.set(prefix, Math.max(expiry, previous));
  }
}
