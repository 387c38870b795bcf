// Limits typed into forms. An empty field means "no limit" (null to the service), never 0.

/** Requests or tokens per minute: a whole number of at least 1, as the service stores them. */
export function parsePerMinute(text: string, name: string): number | null {
  if (text.trim() === "") return null;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 2_147_483_647) {
    throw new Error(`${name}: a whole number of at least 1, or empty for no limit`);
  }
  return value;
}

/** US dollars per calendar month, 0 or more. */
export function parseBudget(text: string, name: string): number | null {
  if (text.trim() === "") return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}: an amount of 0 or more, or empty for no budget`);
  return value;
}

export const limitText = (value: number | null): string => (value === null ? "" : String(value));
