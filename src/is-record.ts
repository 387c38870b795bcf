/** A plain JSON object (not null, not an array): the check every reader of untrusted JSON starts with. */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
