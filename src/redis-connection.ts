import { Cluster, Redis } from "ioredis";
import type { Config } from "./config.ts";

/**
 * One Redis server (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES): the rest of the service speaks to either
 * through the same commands. Every script's keys share one hash tag (a user's, or a single key), so each script runs
 * on one slot and never fails with CROSSSLOT.
 */
export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  url?: string | undefined;
  /** `host:port` or `redis://[user:password@]host:port` entries; any reachable node will do, the rest are found. */
  clusterNodes?: string[] | undefined;
}

/** The configured Redis (a cluster when REDIS_CLUSTER_NODES is set), or undefined: in-process memory instead. */
export function redisTargetOf(config: Pick<Config, "REDIS_URL" | "REDIS_CLUSTER_NODES">): RedisTarget | undefined {
  if (config.REDIS_CLUSTER_NODES?.length) return { clusterNodes: config.REDIS_CLUSTER_NODES };
  if (config.REDIS_URL) return { url: config.REDIS_URL };
  return undefined;
}

export interface RedisConnectionOptions {
  lazyConnect: boolean;
  enableOfflineQueue: boolean;
  maxRetriesPerRequest: number | null;
  connectTimeout?: number;
  commandTimeout?: number;
  enableAutoPipelining?: boolean;
  retryStrategy?: (attempt: number) => number | null;
}

/** A client for the configured Redis: undefined when there is none (in-process memory instead). */
export function createRedisClient(target: RedisTarget, options: RedisConnectionOptions): RedisClient | undefined {
  const { retryStrategy, enableOfflineQueue, lazyConnect, enableAutoPipelining, ...perConnection } = options;
  if (target.clusterNodes && target.clusterNodes.length > 0) {
    const nodes = target.clusterNodes.map(parseNode);
    const credentials = nodes.find((node) => node.password !== undefined || node.tls);
    return new Cluster(
      nodes.map(({ host, port }) => ({ host, port })),
      {
        lazyConnect,
        enableOfflineQueue,
        ...(enableAutoPipelining !== undefined && { enableAutoPipelining }),
        ...(retryStrategy && { clusterRetryStrategy: retryStrategy }),
        redisOptions: {
          ...perConnection,
          ...(credentials?.username && { username: credentials.username }),
          ...(credentials?.password && { password: credentials.password }),
          ...(credentials?.tls && { tls: {} }),
        },
      },
    );
  }
  if (!target.url) return undefined;
  return new Redis(target.url, {
    lazyConnect,
    enableOfflineQueue,
    ...perConnection,
    ...(enableAutoPipelining !== undefined && { enableAutoPipelining }),
    ...(retryStrategy && { retryStrategy }),
  });
}

interface ClusterNode {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls: boolean;
}

function parseNode(entry: string): ClusterNode {
  const text = entry.trim();
  const url = new URL(text.includes("://") ? text : `redis://${text}`);
  return {
    // URL keeps IPv6 literals in brackets; sockets want them bare.
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : 6379,
    ...(url.username && { username: decodeURIComponent(url.username) }),
    ...(url.password && { password: decodeURIComponent(url.password) }),
    tls: url.protocol === "rediss:",
  };
}

/**
 * A connection of its own for a subscriber (Redis wants one), of the same kind as `redis`: it waits for Redis and
 * keeps retrying in the background instead of failing at once.
 */
export function subscriberConnection(redis: RedisClient): RedisClient {
  if (redis instanceof Cluster) {
    return redis.duplicate([], {
      enableOfflineQueue: true,
      lazyConnect: false,
      redisOptions: { ...redis.options.redisOptions, maxRetriesPerRequest: null },
    });
  }
  return redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false });
}

/**
 * The hash tag every Redis key of one user carries (limits, budget, cache entries, coalescing locks): Redis Cluster
 * places keys by the part in braces, so one user's keys share a slot and a script may touch them all at once.
 */
export function userHashTag(userId: string): string {
  return `{u:${userId}}`;
}
