import { createHash } from "node:crypto";
import type { RedisClient } from "../redis-connection.ts";

/**
 * Each model's tokens per prompt byte, learned from the usage its upstream reports, so that a reservation is an
 * upper bound whatever the model's tokenizer: the highest ratio seen for the model (plus a little headroom), or one
 * token a byte for a model not seen yet. Kept in the process and, with Redis, shared by every instance: a ratio
 * learned by one raises it everywhere (a hash field that only ever grows), and each instance reads the hash back
 * every few seconds. Reading it costs nothing on the request path.
 */
export interface TokenRatios {
  /** Tokens per byte to reserve for `model`'s prompts. */
  tokensPerByte(model: string): number;
  /** Whether a ratio was learned for `model` (here, or by another instance). */
  has(model: string): boolean;
  /** After a call: `observed` tokens per byte (estimate.ts `observedTokensPerByte`) raises the model's ratio. */
  learn(model: string, observed: number): void;
  close(): void;
}

export interface TokenRatiosOptions {
  redis?: RedisClient;
  /**
   * The upstream the ratios describe (its base URL): a ratio belongs to the tokenizer that counted it, so
   * instances of another upstream, or a new one, learn afresh. Default "default".
   */
  upstream?: string;
  /** A failed Redis call: the ratios stay this process's own until it answers again. */
  onRedisError?: (error: unknown) => void;
  /** How often the shared ratios are read back. Default 5 s. */
  refreshMs?: number;
}

/** One token a byte: no byte-level tokenizer makes more. */
export const unseenModelTokensPerByte = 1;
/** A prompt unlike the ones seen (code after prose) can count a little more per byte than the highest seen. */
export const ratioHeadroom = 1.05;
/**
 * The most a call can teach: an upstream that once reported absurd usage must not refuse every later request as
 * too large. A chat template's own text can take a small prompt past one token a byte, but not past four.
 */
const maxTokensPerByte = 4;
/** Models remembered; beyond that the ratios start over (a model name is the caller's choice). */
const maxModels = 10_000;

/**
 * Sets the field to ARGV[2] unless it already holds more: the shared ratio only grows. The hash lives for a month
 * after its last raise: an upstream not used for that long is learned afresh.
 */
const raiseScript = `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if current == nil or tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;
const sharedRatiosTtlMs = 30 * 24 * 3_600_000;

export function createTokenRatios(options: TokenRatiosOptions = {}): TokenRatios {
  const { redis } = options;
  const redisKey = `arh:limits:tokens-per-byte:${createHash("sha256")
    .update(options.upstream ?? "default")
    .digest("hex")
    .slice(0, 16)}`;
  const ratios = new Map<string, number>();
  const report = (error: unknown) => options.onRedisError?.(error);

  function raise(model: string, ratio: number): boolean {
    const known = ratios.get(model);
    if (known !== undefined && known >= ratio) return false;
    if (known === undefined && ratios.size >= maxModels) ratios.clear();
    ratios.set(model, ratio);
    return true;
  }

  let refreshing: Promise<void> | undefined;
  function refresh(): void {
    if (!redis || refreshing) return;
    refreshing = redis
      .hgetall(redisKey)
      .then((shared) => {
        for (const [model, value] of Object.entries(shared)) {
          const ratio = Number(value);
          if (Number.isFinite(ratio) && ratio > 0) raise(model, Math.min(ratio, maxTokensPerByte));
        }
      }, report)
      .finally(() => {
        refreshing = undefined;
      });
  }
  const timer = redis ? setInterval(refresh, options.refreshMs ?? 5_000) : undefined;
  timer?.unref();
  refresh();

  return {
    tokensPerByte(model) {
      const learned = ratios.get(model);
      return learned === undefined ? unseenModelTokensPerByte : learned * ratioHeadroom;
    },

    has(model) {
      return ratios.has(model);
    },

    learn(model, observed) {
      if (!Number.isFinite(observed) || observed <= 0) return;
      const ratio = Math.min(observed, maxTokensPerByte);
      if (!raise(model, ratio)) return;
      redis?.eval(raiseScript, 1, redisKey, model, String(ratio), sharedRatiosTtlMs).catch(report);
    },

    close() {
      if (timer) clearInterval(timer);
    },
  };
}
