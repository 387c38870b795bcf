// How numbers, money and times read on every view. Numbers use en-US grouping so "$0.0123" and "1,234" look the
// same for everyone; times are shown in the browser's timezone (the service's timestamps are UTC).

const count = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
// Money always reads with four decimals ("$0.0123", "$5.0000"), so amounts in one table line up and compare at a glance.
const money = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  minimumFractionDigits: 4,
  maximumFractionDigits: 4,
});
// Prices per request below a hundredth of a cent are common: keep two significant digits rather than rounding them
// to "$0.0000" or "$0.0001".
const tinyMoney = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumSignificantDigits: 2 });
const percent = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });

export const formatCount = (value: number): string => count.format(value);

/** `null` is a model with no known price. */
export function formatUsd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "unknown";
  // Sums of floating-point prices carry noise (0.00009999999): round it away before choosing a format.
  const amount = Number(value.toPrecision(12));
  if (amount !== 0 && Math.abs(amount) < 0.0001) return tinyMoney.format(amount);
  return money.format(amount);
}

const moneyTick = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  minimumFractionDigits: 4,
  maximumFractionDigits: 6,
});

/**
 * A chart axis's money tick: four decimals as everywhere, more when the tick needs them, so that ticks a step of
 * $0.00015 apart do not read "$0.0002, $0.0003, $0.0005".
 */
export function formatUsdTick(value: number): string {
  const amount = Number(value.toPrecision(12));
  if (amount !== 0 && Math.abs(amount) < 0.0001) return tinyMoney.format(amount);
  return moneyTick.format(amount);
}

export const formatPercent = (rate: number): string => percent.format(rate);

// Below 10 ms a tenth of a millisecond tells (an entry of 0.4 ms); above, whole milliseconds.
const shortMs = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return `${(value < 10 ? shortMs : count).format(value)} ms`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const shortDateTime = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const hourLabel = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const hourLong = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
// A day bucket is a UTC day: naming it by its UTC date keeps "Nov 28" from reading as "Nov 27" west of Greenwich.
const dayLabel = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const dayLong = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** For tables: the year and the time zone go without saying. */
export function formatShortDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : shortDateTime.format(date);
}

/** A chart axis tick for a bucket's start. */
export function formatBucket(iso: string, bucket: "hour" | "day"): string {
  const date = new Date(iso);
  return bucket === "hour" ? hourLabel.format(date) : dayLabel.format(date);
}

/** A chart tooltip's heading for a bucket's start. */
export function formatBucketLong(iso: string, bucket: "hour" | "day"): string {
  const date = new Date(iso);
  return bucket === "hour" ? hourLong.format(date) : `${dayLong.format(date)} (UTC)`;
}

/** The browser's timezone, to say in which zone the times are shown. */
export const localTimeZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone;

/** JSON for people: two-space indents; text stays text. */
export function formatJson(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}
