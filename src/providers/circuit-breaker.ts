import { AppError, isAppError } from "../errors.ts";
import type { Provider } from "./provider.ts";

export type CircuitState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
  /** Consecutive failed calls that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit fails fast before it lets one probe through. */
  coolDownMs: number;
  now?: () => number;
  onStateChange?: (state: CircuitState) => void;
}

export interface GuardedProvider extends Provider {
  circuitState(): CircuitState;
}

/** Failures that say the upstream is unwell. A bad request or a client that left says nothing about it. */
const upstreamFailures = new Set(["upstream_error", "upstream_timeout"]);
const isUpstreamFailure = (error: unknown) => isAppError(error) && upstreamFailures.has(error.code);

/**
 * A circuit breaker in front of one upstream: after `failureThreshold` failed calls in a row it fails fast with
 * 503 and Retry-After for `coolDownMs`, sparing the upstream and the clients the wait; then one probe goes through,
 * and its outcome closes the circuit or opens it for another cool-down.
 */
export function withCircuitBreaker(provider: Provider, options: CircuitBreakerOptions): GuardedProvider {
  const now = options.now ?? Date.now;
  let state: CircuitState = "closed";
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const setState = (next: CircuitState) => {
    if (next === state) return;
    state = next;
    options.onStateChange?.(next);
  };

  /** Throws while the circuit is open; returns whether this call is the half-open probe. */
  function admit(): boolean {
    if (state === "closed") return false;
    const waitedMs = now() - openedAt;
    if (state === "open" && waitedMs >= options.coolDownMs) setState("half-open");
    if (state === "half-open" && !probing) {
      probing = true;
      return true;
    }
    const remainingMs = Math.max(0, options.coolDownMs - waitedMs);
    throw new AppError(
      "service_unavailable",
      `the upstream failed ${options.failureThreshold} times in a row; calls to it pause for ${Math.ceil(remainingMs / 1000)} s`,
      { retryAfterSeconds: Math.max(1, Math.ceil(remainingMs / 1000)) },
    );
  }

  function succeeded(probe: boolean) {
    if (probe) probing = false;
    failures = 0;
    setState("closed");
  }

  function failed(probe: boolean, error: unknown) {
    if (probe) probing = false;
    if (!isUpstreamFailure(error)) {
      // An answer, even a "no" (a bad request, a client that left): the upstream itself is fine.
      succeeded(false);
      return;
    }
    failures++;
    if (probe || failures >= options.failureThreshold) {
      openedAt = now();
      setState("open");
    }
  }

  async function guard<T>(call: () => Promise<T>): Promise<T> {
    const probe = admit();
    try {
      const value = await call();
      succeeded(probe);
      return value;
    } catch (error) {
      failed(probe, error);
      throw error;
    }
  }

  return {
    name: provider.name,
    chatCompletion: (body, callOptions) => guard(() => provider.chatCompletion(body, callOptions)),
    embeddings: (body, callOptions) => guard(() => provider.embeddings(body, callOptions)),
    listModels: (callOptions) => guard(() => provider.listModels(callOptions)),
    ...(provider.countTokens && {
      countTokens: (body, callOptions) =>
        guard(() => (provider.countTokens as NonNullable<Provider["countTokens"]>)(body, callOptions)),
    }),
    async *chatCompletionStream(body, callOptions) {
      const probe = admit();
      try {
        yield* provider.chatCompletionStream(body, callOptions);
        succeeded(probe);
      } catch (error) {
        failed(probe, error);
        throw error;
      } finally {
        // A consumer that stopped early settles nothing; free the probe slot for the next caller.
        if (probe) probing = false;
      }
    },
    close: () => provider.close(),
    circuitState: () => {
      if (state === "open" && now() - openedAt >= options.coolDownMs) return "half-open";
      return state;
    },
  };
}
