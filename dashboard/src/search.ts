// The query parts of the dashboard's own routes (after the "#"), checked so a hand-edited link cannot break a view.
import { type RequestStatus, type RequestType, requestStatuses, requestTypes } from "./api-types.ts";

export const rangeKeys = ["24h", "7d", "30d", "90d"] as const;
export type RangeKey = (typeof rangeKeys)[number];

export interface OverviewSearch {
  range?: RangeKey;
  /** Admins: one user's usage instead of everyone's. */
  user?: string;
}

export interface RequestsSearch {
  type?: RequestType;
  status?: RequestStatus;
  model?: string;
  provider?: string;
  /** YYYY-MM-DD, a day in the browser's timezone. */
  from?: string;
  to?: string;
  user?: string;
  /** The cursors that led to the page shown, oldest first: "Previous page" pops one. */
  cursors?: string[];
}

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value.trim() !== ""
    ? value.trim()
    : typeof value === "number"
      ? String(value)
      : undefined;

const oneOf = <T extends string>(values: readonly T[], value: unknown): T | undefined =>
  values.find((candidate) => candidate === value);

const day = (value: unknown): string | undefined =>
  typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : undefined;

export function overviewSearch(search: Record<string, unknown>): OverviewSearch {
  return { range: oneOf(rangeKeys, search.range), user: text(search.user) };
}

export function requestsSearch(search: Record<string, unknown>): RequestsSearch {
  const cursors = Array.isArray(search.cursors)
    ? search.cursors.filter((cursor): cursor is string => typeof cursor === "string" && cursor !== "")
    : [];
  return {
    type: oneOf(requestTypes, search.type),
    status: oneOf(requestStatuses, search.status),
    model: text(search.model),
    provider: text(search.provider),
    from: day(search.from),
    to: day(search.to),
    user: text(search.user),
    cursors: cursors.length > 0 ? cursors : undefined,
  };
}
