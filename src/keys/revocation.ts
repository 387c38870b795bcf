import { type RedisClient, subscriberConnection } from "../redis-connection.ts";
import { changedErrorReports } from "../observability/throttled-log.ts";
import { withTimeout } from "../timeout.ts";
import type { KeyVerifier } from "./key-verifier.ts";

/**
 * Revocation that reaches every instance at once. Each instance trusts a verified key for KEY_CACHE_TTL_MS without
 * asking the database; a revoked key, a disabled user or changed limits must not wait for that. The instance that
 * makes the change drops its own cache entries and publishes on a Redis channel; every instance subscribed (on a
 * connection of its own, as Redis requires for subscribers) drops them too. A subscriber that was disconnected may
 * have missed messages, so it clears its whole cache when it reconnects. Without Redis there is one instance, and
 * the local invalidation is all there is to do.
 */

const keyInvalidationChannel = "arh:keys:invalidate";

export interface KeyInvalidation {
  kind: "key" | "user";
  id: string;
}

export interface KeyRevocation {
  /** Drops a key from every instance's cache (after it was revoked). Never throws. */
  invalidateKey(keyId: string): Promise<void>;
  /** Drops a user's keys from every instance's cache (after a disable, or a change of limits). Never throws. */
  invalidateUser(userId: string): Promise<void>;
  close(): Promise<void>;
}

export interface KeyRevocationOptions {
  verifier: KeyVerifier;
  redis?: RedisClient;
  /** A failed publish or subscription: other instances then notice within the key cache's TTL. */
  onError?: (error: unknown, context: string) => void;
  /** How long start-up waits for the subscription before going on without it (it keeps trying). Default 2 s. */
  subscribeTimeoutMs?: number;
}

/** Publishes an invalidation; for the CLI, which has no verifier of its own. */
export async function publishKeyInvalidation(redis: RedisClient, message: KeyInvalidation): Promise<void> {
  await redis.publish(keyInvalidationChannel, JSON.stringify(message));
}

function parseKeyInvalidation(text: string): KeyInvalidation | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const { kind, id } = value as Record<string, unknown>;
    if ((kind === "key" || kind === "user") && typeof id === "string") return { kind, id };
  } catch {
    // not ours: ignored
  }
  return undefined;
}

export async function createKeyRevocation(options: KeyRevocationOptions): Promise<KeyRevocation> {
  const { verifier, redis } = options;
  const onError = options.onError ?? (() => {});

  const apply = (message: KeyInvalidation) => {
    if (message.kind === "key") verifier.invalidateKey(message.id);
    else verifier.invalidateUser(message.id);
  };

  const subscriber = redis && subscriberConnection(redis);
  if (subscriber) {
    let connectedBefore = false;
    const errors = changedErrorReports((error) => onError(error, "key invalidation subscriber"));
    subscriber.on("error", (error: Error) => errors.failed(error));
    subscriber.on("ready", () => {
      errors.recovered();
      // Messages published while this connection was down are lost: forget every cached key instead.
      if (connectedBefore) verifier.clear();
      connectedBefore = true;
    });
    subscriber.on("message", (channel: string, text: string) => {
      if (channel !== keyInvalidationChannel) return;
      const message = parseKeyInvalidation(text);
      if (message) apply(message);
    });
    const subscribed = subscriber.subscribe(keyInvalidationChannel);
    subscribed.catch((error: unknown) => onError(error, "subscribing to key invalidations"));
    // Start-up waits for the subscription while Redis answers (so a revoke right after start is not missed);
    // when Redis is down it goes on at once, and the subscription happens when Redis comes back.
    if (redis?.status === "ready") {
      const timeoutMs = options.subscribeTimeoutMs ?? 2_000;
      // Never throws: a failed subscription is reported above, a slow one goes on without start-up waiting for it.
      await withTimeout(subscribed, timeoutMs, "subscription still pending").catch(() => {});
    }
  }

  async function invalidate(message: KeyInvalidation) {
    apply(message);
    if (!redis) return;
    try {
      await publishKeyInvalidation(redis, message);
    } catch (error) {
      onError(error, "publishing a key invalidation");
    }
  }

  return {
    invalidateKey: (keyId) => invalidate({ kind: "key", id: keyId }),
    invalidateUser: (userId) => invalidate({ kind: "user", id: userId }),
    async close() {
      if (!subscriber) return;
      // QUIT would wait in the offline queue for a Redis that is away; a connection that is not up just closes.
      if (subscriber.status === "ready") await subscriber.quit().catch(() => subscriber.disconnect());
      else subscriber.disconnect();
    },
  };
}
