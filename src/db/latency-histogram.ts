/**
 * The latency histogram kept in every usage rollup row: request counts per latency bucket, mergeable by adding
 * arrays element-wise, so p50 and p95 of any set of rows can be read without the requests themselves.
 *
 * Resolution: bucket 0 holds 0 ms; bucket k (1..56) holds [bounds[k-1], bounds[k]) ms, the last one everything
 * from 660 561 ms (11 min) up. The bounds are 2^(i/3) rounded (third-octave steps, 57 buckets). Latencies are whole
 * milliseconds, so below 10 ms a bucket holds one or two values, and above it any two of its values differ by less
 * than 26% of its lower bound. A percentile is interpolated linearly inside its bucket and clamped to the rows'
 * smallest and largest latency; it lies in the same bucket as the exact (nearest-rank) percentile, so it is off by
 * at most 1 ms below 10 ms and by less than 26% above. One request, or many with the same latency, is exact.
 *
 * The bounds are stored data: the migration's `usage_latency_bucket()` holds the same list (a test checks both
 * agree), and changing them would need new rollup columns, not an edit here.
 */
export const latencyBucketBoundsMs: readonly number[] = Object.freeze([
  1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 51, 64, 81, 102, 128, 161, 203, 256, 323, 406, 512, 645, 813, 1024,
  1290, 1625, 2048, 2580, 3251, 4096, 5161, 6502, 8192, 10321, 13004, 16384, 20643, 26008, 32768, 41285, 52016, 65536,
  82570, 104032, 131072, 165140, 208064, 262144, 330281, 416128, 524288, 660561,
]);

/** Length of every stored histogram array. */
export const latencyBucketCount = latencyBucketBoundsMs.length + 1;

/** The bucket of a latency, as PostgreSQL's `width_bucket(ms, bounds)` numbers it (0 below the first bound). */
export function latencyBucketOf(latencyMs: number): number {
  let low = 0;
  let high = latencyBucketBoundsMs.length;
  // The number of bounds <= latencyMs.
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((latencyBucketBoundsMs[middle] as number) <= latencyMs) low = middle + 1;
    else high = middle;
  }
  return low;
}

export interface LatencySummary {
  /** Counts per bucket (index = bucket number); shorter arrays count as zeros beyond their end. */
  histogram: readonly number[];
  /** Smallest and largest latency of the rows counted, in ms. */
  minMs: number;
  maxMs: number;
}

/**
 * The latency below which a `quantile` (0..1) of the requests fall, in whole ms; null when nothing was counted.
 * Latencies are whole milliseconds, so bucket [lo, hi) holds lo..hi-1 and the estimate stays within it.
 */
export function latencyPercentileMs(summary: LatencySummary, quantile: number): number | null {
  const { histogram, minMs, maxMs } = summary;
  let total = 0;
  for (const count of histogram) total += count;
  if (total === 0) return null;
  const rank = quantile * total;
  let before = 0;
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    const count = histogram[bucket] ?? 0;
    if (count === 0) continue;
    if (before + count >= rank) {
      const low = bucket === 0 ? 0 : (latencyBucketBoundsMs[bucket - 1] as number);
      const high = bucket < latencyBucketBoundsMs.length ? (latencyBucketBoundsMs[bucket] as number) - 1 : maxMs;
      const estimate = low + ((rank - before) / count) * Math.max(0, high - low);
      return Math.round(Math.min(maxMs, Math.max(minMs, estimate)));
    }
    before += count;
  }
  return Math.round(maxMs);
}
