/**
 * `work`'s outcome, or a rejection once `ms` have passed without one: an Error with `timeoutError` as its message,
 * or the error `timeoutError()` makes. The timer is cleared either way, so nothing is left pending after the answer.
 * The work itself goes on (a promise cannot be stopped); a late failure of it is handled here, by the race.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, timeoutError: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof timeoutError === "string" ? new Error(timeoutError) : timeoutError()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
