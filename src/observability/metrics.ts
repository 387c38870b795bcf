import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type Metrics = ReturnType<typeof createMetrics>;

/** One registry per service instance, so tests that build several apps don't share counters. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "arh_process_" });
  // Where the queue's depth is read from when scraped: set once the queue has started (services.ts).
  const queue: { depth?: () => Promise<number> } = {};
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

  return {
    registry,
    httpRequests: new Counter({
      name: "arh_http_requests_total",
      help: "HTTP requests answered, by route, method and status",
      labelNames: ["route", "method", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "arh_http_request_duration_seconds",
      help: "Total time to answer an HTTP request, by route",
      labelNames: ["route", "method"] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    modelRequests: new Counter({
      name: "arh_model_requests_total",
      help: "Model requests handled by the pipeline, by type, model, provider and outcome status",
      labelNames: ["type", "model", "provider", "status"] as const,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: "arh_upstream_duration_seconds",
      help: "Time spent waiting on the model provider, all attempts of one call together",
      labelNames: ["provider", "model"] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: "arh_cache_lookups_total",
      help: "Response cache lookups, by result (hit, miss, bypass)",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    tokens: new Counter({
      name: "arh_tokens_total",
      help: "Tokens used, by kind (prompt, completion) and model",
      labelNames: ["kind", "model"] as const,
      registers: [registry],
    }),
    costUsd: new Counter({
      name: "arh_cost_usd_total",
      help: "Upstream cost in US dollars, by model",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
    rateLimitRejections: new Counter({
      name: "arh_rate_limit_rejections_total",
      help: "Requests refused by a rate limit or budget, by limit (rpm, tpm, budget)",
      labelNames: ["limit"] as const,
      registers: [registry],
    }),
    upstreamRetries: new Counter({
      name: "arh_upstream_retries_total",
      help: "Retries of upstream calls",
      labelNames: ["provider"] as const,
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: "arh_upstream_errors_total",
      help: "Upstream calls that failed for good, by error code",
      labelNames: ["provider", "code"] as const,
      registers: [registry],
    }),
    circuitOpen: new Gauge({
      name: "arh_upstream_circuit_open",
      help: "1 while a provider's circuit is open (calls fail fast, or one probe is out), 0 while it is closed",
      labelNames: ["provider"] as const,
      registers: [registry],
    }),
    queue,
    queueDepth: new Gauge({
      name: "arh_queue_depth",
      help: "Queued requests waiting to run (every instance's), read from the queue when scraped",
      registers: [registry],
      async collect() {
        if (queue.depth) this.set(await queue.depth().catch(() => Number.NaN));
      },
    }),
    webhookDeliveries: new Counter({
      name: "arh_webhook_deliveries_total",
      help: "Webhook delivery attempts by result: delivered, retrying (failed, tried again later), failed (for good)",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: "arh_queue_wait_seconds",
      help: "Time from a queued request's acceptance to a worker starting it",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400],
      registers: [registry],
    }),
  };
}
