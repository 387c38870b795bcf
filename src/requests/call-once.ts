import type { LimitState, LimitSubject, Reservation } from "../limits/limiter.ts";
import type { CacheStep } from "./caching.ts";
import type { Fallbacks } from "./fallbacks.ts";
import type { Job, JobInfo, Produced, Progress } from "./job.ts";
import type { Metering } from "./metering.ts";
import type { ReservationStep } from "./reservation.ts";
import type { SingleFlight } from "./single-flight.ts";

const ignore = () => {};

/** What the call step produced: the answer, whether another request's call made it, and the windows after it. */
export interface Called<T> {
  produced: Produced<T>;
  /** The answer came from an identical request's call (in this process or another instance), not from ours. */
  shared: boolean;
  rateLimit: LimitState;
}

/**
 * Reserve → call once → settle, for an answer delivered whole. Identical cacheable requests in flight share one
 * upstream call (single flight); the others are answered from it as cache hits.
 *
 * The reservation goes out in the same Redis round trip as the coalescing lock; a request that ends up sharing
 * another's call gives it back. One joining an identical call already running in this process reserves nothing:
 * it would only hold tokens other requests of its user might need. The fill is sent before the lock's release, so
 * a waiter on another instance finds the answer, and is not awaited: it goes out beside the record's commit.
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
    key: string | undefined,
    admitted: LimitState,
    progress: Progress,
  ): Promise<Called<T>> {
    const info = job as JobInfo<unknown>;
    const coalesced = key !== undefined && job.context.cacheMode === "use";
    let reserving: Promise<Reservation> | undefined =
      coalesced && singleFlight.running(key) ? undefined : reservations.reserve(info, subject);
    // Marked handled now: a refusal may arrive while the lock is still being taken, before anyone awaits it.
    reserving?.catch(ignore);
    let rateLimit = admitted;
    let led = false;

    const lead = async () => {
      led = true;
      // Reserved only now when this request joined a call whose client left, and has to make the call itself.
      reserving ??= reservations.reserve(info, subject);
      const reservation = await reserving;
      rateLimit = { ...rateLimit, ...reservation.state };
      const produced = await metering.call(job, reservation, progress, fallbacks.callOptions(info, progress));
      void caching.fill(key, produced);
      return produced;
    };

    try {
      if (!coalesced) {
        const produced = await lead();
        return { produced, shared: false, rateLimit };
      }
      const flight = await singleFlight.run(key, lead, async () => {
        const entry = await caching.lookup(job, key);
        if (!entry) return undefined;
        return {
          value: entry.value,
          model: entry.model,
          usage: entry.usage,
          upstreamMs: 0,
          reportedPromptTokens: undefined,
        };
      });
      return { produced: flight.value, shared: flight.shared, rateLimit };
    } finally {
      if (!led && reserving) reservations.giveBack(reserving);
    }
  };
}
