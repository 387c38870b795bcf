import type { Logger } from "./logger.ts";

/** A failure that may recur on every request while a dependency is down, reported without flooding the log. */
export interface FailureReports<E = unknown> {
  /** Reports `error`, or only counts it when the policy says the log has heard enough of it for now. */
  failed(error: E): void;
  /** A success: the outage is over, so the next failure is reported at once. */
  recovered(): void;
}

/**
 * At most one report per `intervalMs` (default 10 s): the first failure at once, then the next one due with the
 * number of failures left unreported since the previous report. Counts survive `recovered()`, so the first report
 * of the next outage carries what the last one left unreported. `now` is for tests.
 */
export function throttledReports(
  report: (error: unknown, unreported: number) => void,
  options: { intervalMs?: number; now?: () => number } = {},
): FailureReports {
  const intervalMs = options.intervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  let lastReportAt = Number.NEGATIVE_INFINITY;
  let unreported = 0;
  return {
    failed(error) {
      const at = now();
      if (at - lastReportAt < intervalMs) {
        unreported++;
        return;
      }
      const count = unreported;
      lastReportAt = at;
      unreported = 0;
      report(error, count);
    },
    recovered() {
      lastReportAt = Number.NEGATIVE_INFINITY;
    },
  };
}

/**
 * A client that reconnects on its own fails every attempt with the same error: reported only when the message
 * differs from the previous failure's, and again after `recovered()` (it connected).
 */
export function changedErrorReports(report: (error: Error) => void): FailureReports<Error> {
  let lastMessage = "";
  return {
    failed(error) {
      if (error.message !== lastMessage) report(error);
      lastMessage = error.message;
    },
    recovered() {
      lastMessage = "";
    },
  };
}

/**
 * A warning that may fire on every request while a dependency is down, as `throttledReports` allows: the line
 * carries the number of occurrences since the previous line, this one included.
 */
export function throttledWarning(logger: Logger, message: string, intervalMs = 10_000): (error: unknown) => void {
  const reports = throttledReports(
    (error, unreported) => logger.warn({ err: error, occurrencesSinceLastLine: unreported + 1 }, message),
    { intervalMs },
  );
  return (error) => reports.failed(error);
}
