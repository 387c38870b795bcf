/**
 * Money is kept to whole nano-dollars (1e-9 USD): stored costs are rounded to them, so nothing is lost, budgets are
 * counted in them as integers, and a cheap request (~$0.00001) is not rounded by the 5–10% that whole micro-dollars
 * would cost it.
 */
export const nanoPerUsd = 1e9;

/** USD → integer nano-dollars, never below 0: what budgets count in. */
export function toNano(usd: number): number {
  return Math.max(0, Math.round(usd * nanoPerUsd));
}

/** USD rounded to whole nano-dollars: keeps float noise (0.00020999999999999998) of products and sums out. */
export function roundUsd(usd: number): number {
  return Math.round(usd * nanoPerUsd) / nanoPerUsd;
}
