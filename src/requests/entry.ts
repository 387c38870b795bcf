import {
  type LimitState,
  LimitRefusedError,
  type Limiter,
  type LimitSubject,
  type Reservation,
} from "../limits/limiter.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { CacheStep } from "./caching.ts";
import type { CacheEntry, JobInfo } from "./job.ts";
import type { ReservationStep } from "./reservation.ts";
import type { FlightEntry, SingleFlight } from "./single-flight.ts";

/** A request the limits let in, and what its entry found and holds. */
export interface Entered<T> {
  state: LimitState;
  key: string | undefined;
  /** The cached answer, when there is one (then nothing is held). */
  hit: CacheEntry<T> | undefined;
  /**
   * Held for this request's own upstream call. Undefined when it is answered from the cache or will wait for another
   * call (an identical one in this process, or another instance holding the lock): it reserves if it must lead.
   */
  reservation: Reservation | undefined;
  /** The coalescing lock across instances, as the entry left it (for SingleFlight.run). */
  flight: FlightEntry;
}

/**
 * The first step, one Redis round trip: admit (every request counts against rpm, a cache hit too), look up the
 * cache, take the coalescing lock, and reserve the call's tokens and cost, in one script of the user's slot; each
 * only if the one before let the request through, so a hit holds nothing and a refusal leaves no lock. Rejects with
 * LimitRefusedError when a limit says no.
 *
 * When the cache is in this process (no Redis), admission and lookup go side by side and a miss reserves after:
 * nothing is saved by doing more at once where nothing travels.
 */
export function createEntry(deps: {
  limiter: Limiter;
  caching: CacheStep;
  reservations: ReservationStep;
  singleFlight: SingleFlight;
  metrics: Metrics;
}) {
  const { limiter, caching, reservations, singleFlight, metrics } = deps;

  const counted = <T>(hit: CacheEntry<T> | undefined, key: string | undefined) => {
    metrics.cacheLookups.inc({ result: hit ? "hit" : key ? "miss" : "bypass" });
    return hit;
  };

  return async function enter<T>(
    job: JobInfo<T>,
    subject: LimitSubject,
    options: { coalesce: boolean },
  ): Promise<Entered<T>> {
    const info = job as JobInfo<unknown>;
    const key = caching.keyOf(info);
    const lookingUp = key !== undefined && job.context.cacheMode === "use";
    const coalesced = options.coalesce && lookingUp;
    // One joining an identical call already running in this process holds nothing: it would only hold tokens other
    // requests of its user might need.
    const joining = coalesced && singleFlight.running(key);
    const lookup = caching.lookupKeyOf(info, key);

    if (lookingUp && lookup === undefined) {
      const [entry, found] = await Promise.all([limiter.enter(subject, {}), caching.lookup(job, key)]);
      if (!entry.ok) throw new LimitRefusedError(entry.refusal);
      const hit = counted(found, key);
      if (hit || joining) return { state: entry.state, key, hit, reservation: undefined, flight: undefined };
      const reservation = await reservations.reserve(info, subject);
      return { state: { ...entry.state, ...reservation.state }, key, hit, reservation, flight: undefined };
    }

    const lock = coalesced && !joining ? singleFlight.lockOf(key) : undefined;
    const entry = await limiter.enter(subject, {
      estimate: joining ? undefined : reservations.estimateOf(info, subject),
      lookup,
      lock,
    });
    if (!entry.ok) throw new LimitRefusedError(entry.refusal);
    let hit: CacheEntry<T> | undefined;
    let reservation = entry.reservation;
    if (entry.cached !== undefined) hit = caching.parse<T>(entry.cached);
    else if (lookingUp && !entry.lookedUp) {
      // The limits fell back to memory (Redis failing): the lookup is made on its own.
      hit = await caching.lookup(job, key);
      if (hit && reservation) reservations.giveBack(Promise.resolve(reservation));
      if (hit) reservation = undefined;
    }
    counted(hit, key);
    if (hit) return { state: entry.state, key, hit, reservation: undefined, flight: undefined };
    if (entry.cached !== undefined && !joining) {
      // An entry too damaged to read stopped the script before its reservation: a miss, reserved now.
      reservation = await reservations.reserve(info, subject);
    }
    const flight: FlightEntry =
      entry.lock === "taken" && lock ? { taken: lock.token } : entry.lock === "busy" ? "busy" : undefined;
    return { state: entry.state, key, hit: undefined, reservation, flight };
  };
}
