import type { Logger } from "./logger.ts";

/**
 * A warning that may fire on every request while a dependency is down: logged at most once per interval, with the
 * number of occurrences since the last line, so an outage is visible without flooding the log.
 */
export function throttledWarning(logger: Logger, message: string, intervalMs = 10_000): (error: unknown) => void {
  let lastAt = 0;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastAt < intervalMs) {
      suppressed++;
      return;
    }
    logger.warn({ err: error, occurrencesSinceLastLine: suppressed + 1 }, message);
    lastAt = now;
    suppressed = 0;
  };
}
