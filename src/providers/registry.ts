/**
 * The configured providers, each with its own connection pool, retry policy, timeouts and circuit breaker, behind
 * one router (routing.ts): OpenAI (or the built-in mock when no key is set), Anthropic when its key is set, and
 * PROVIDERS_FILE's OpenAI-compatible ones.
 */
import { withCircuitBreaker, type CircuitState } from "./circuit-breaker.ts";
import { createMockProvider } from "./mock.ts";
import { createOpenAIProvider } from "./openai.ts";
import type { Provider } from "./provider.ts";
import type { FileProvider } from "./providers-file.ts";
import { createRouter, type ProviderRouter, type ProviderSlot } from "./routing.ts";

export interface UpstreamPolicy {
  timeoutMs: number;
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  maxRetries: number;
  circuitFailureThreshold: number;
  circuitCoolDownMs: number;
}

export interface RegistryOptions {
  openai: { apiKey: string | undefined; baseUrl: string };
  anthropic?: { provider: (policy: UpstreamPolicy) => Provider } | undefined;
  files: readonly FileProvider[];
  policy: UpstreamPolicy;
  onCircuitChange?: (provider: string, state: CircuitState) => void;
}

/** Models Anthropic takes without a prefix. */
const claudeModel = (model: string) => model.startsWith("claude-");

export function createProviderRegistry(options: RegistryOptions): ProviderRouter {
  const { policy } = options;
  const guarded = (provider: Provider) =>
    withCircuitBreaker(provider, {
      failureThreshold: policy.circuitFailureThreshold,
      coolDownMs: policy.circuitCoolDownMs,
      onStateChange: (state) => options.onCircuitChange?.(provider.name, state),
    });

  const slots: ProviderSlot[] = [];
  const openai = options.openai.apiKey
    ? createOpenAIProvider({
        baseUrl: options.openai.baseUrl,
        apiKey: options.openai.apiKey,
        timeoutMs: policy.timeoutMs,
        connectTimeoutMs: policy.connectTimeoutMs,
        totalTimeoutMs: policy.totalTimeoutMs,
        maxRetries: policy.maxRetries,
      })
    : createMockProvider();
  slots.push({ name: openai.name, provider: guarded(openai) });
  if (options.anthropic) {
    slots.push({ name: "anthropic", provider: guarded(options.anthropic.provider(policy)), claims: claudeModel });
  }
  for (const file of options.files) {
    const provider = createOpenAIProvider({
      name: file.name,
      baseUrl: file.baseUrl,
      apiKey: file.apiKey,
      apiKeyHeader: file.apiKeyHeader,
      headers: file.headers,
      timeoutMs: file.timeoutMs ?? policy.timeoutMs,
      connectTimeoutMs: Math.min(policy.connectTimeoutMs, file.timeoutMs ?? policy.connectTimeoutMs),
      totalTimeoutMs: policy.totalTimeoutMs,
      maxRetries: file.maxRetries ?? policy.maxRetries,
    });
    slots.push({ name: file.name, provider: guarded(provider), ...(file.models && { models: file.models }) });
  }
  // OpenAI (or the mock) takes every model no other rule claims.
  return createRouter(slots, openai.name);
}
