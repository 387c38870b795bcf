/**
 * The two ways the service meets Redis: one server (REDIS_URL, the shared one on 6379) or a Redis Cluster
 * (REDIS_CLUSTER_NODES, three masters of the test's own). Suites that depend on what Redis shares between requests
 * and instances (limits, cache, coalescing, revocation, idempotency) run under both.
 */
import { startThrowawayRedisCluster } from "./throwaway-redis-cluster.ts";

export const redisModes = ["redis", "redis cluster"] as const;
export type RedisMode = (typeof redisModes)[number];

export interface RedisForTest {
  /** The service's environment for this Redis. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function redisFor(mode: RedisMode): Promise<RedisForTest> {
  if (mode === "redis") return { env: { REDIS_URL: "redis://127.0.0.1:6379" }, close: async () => {} };
  const cluster = await startThrowawayRedisCluster();
  return { env: { REDIS_CLUSTER_NODES: cluster.nodes }, close: () => cluster.close() };
}
