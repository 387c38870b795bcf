import type { LimitState, LimitSubject, Reservation } from "../limits/limiter.ts";
import type { Entered } from "./entry.ts";
import type { CacheStep } from "./caching.ts";
import type { Fallbacks } from "./fallbacks.ts";
import type { Job, JobInfo, Produced, Progress } from "./job.ts";
import type { Metering } from "./metering.ts";
import type { ReservationStep } from "./reservation.ts";
import type { SingleFlight } from "./single-flight.ts";

/** What the call step produced: the answer, whether another request's call made it, and the windows after it. */
export interface Called<T> {
  produced: Produced<T>;
  /** The answer came from an identical request's call (in this process or another instance), not from ours. */
  shared: boolean;
  rateLimit: LimitState;
}

/**
 * Call once → settle, for an answer delivered whole. Identical cacheable requests in flight share one upstream call
 * (single flight); the others are answered from it as cache hits.
 *
 * The entry reserved (and took the coalescing lock) already, unless the request was to wait for another call; one
 * that waited and must call after all (the other's client left, or its lock lapsed) reserves then, and one that ends
 * up sharing a call gives back what it held. The fill is sent before the lock's release, so a waiter on another
 * instance finds the answer, and is not awaited: it goes out beside the record's commit.
 */
export function createCallOnce(deps: {
  singleFlight: SingleFlight;
  reservations: ReservationStep;
  metering: Metering;
  caching: CacheStep;
  fallbacks: Fallbacks;
}) {
  const { singleFlight, reservations, metering, caching, fallbacks } = deps;

  return async function callOnce<T>(
    job: Job<T>,
    subject: LimitSubject,
    entered: Entered<T>,
    progress: Progress,
  ): Promise<Called<T>> {
    const info = job as JobInfo<unknown>;
    const { key } = entered;
    const coalesced = key !== undefined && job.context.cacheMode === "use";
    let reserving: Promise<Reservation> | undefined = entered.reservation && Promise.resolve(entered.reservation);
    let rateLimit: LimitState = entered.state;
    let led = false;

    const lead = async () => {
      led = true;
      // Reserved only now when this request waited for another call that gave no answer, and calls itself.
      if (!reserving) {
        reserving = reservations.reserve(info, subject);
        rateLimit = { ...rateLimit, ...(await reserving).state };
      }
      const reservation = await reserving;
      const produced = await metering.call(job, reservation, progress, fallbacks.callOptions(info, progress));
      void caching.fill(key, produced);
      return produced;
    };

    try {
      if (!coalesced) {
        const produced = await lead();
        return { produced, shared: false, rateLimit };
      }
      const flight = await singleFlight.run(
        key,
        lead,
        async () => {
          const entry = await caching.lookup(job, key);
          if (!entry) return undefined;
          return {
            value: entry.value,
            model: entry.model,
            provider: entry.provider,
            usage: entry.usage,
            upstreamMs: 0,
            reportedPromptTokens: undefined,
          };
        },
        entered.flight,
      );
      return { produced: flight.value, shared: flight.shared, rateLimit };
    } finally {
      if (!led && reserving) reservations.giveBack(reserving);
    }
  };
}
