// Overview: totals, charts over time and breakdowns for a range; admins see everyone's (or one user's), users their
// own, with their budget and rate limits.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { getRouteApi, Link } from "@tanstack/react-router";
import { useId } from "react";
import { ApiError, api, query } from "../api.ts";
import type { Bucket, Me, Overview, OverviewGroup, OverviewTotals, RateWindow } from "../api-types.ts";
import { type GroupBar, GroupChart, TimeChart } from "../charts.tsx";
import { formatCount, formatMs, formatPercent, formatUsd, formatUsdTick, localTimeZone } from "../format.ts";
import { type RangeKey, rangeKeys } from "../search.ts";
import { hasUser, isAdmin, scopeOf, useSession } from "../session.tsx";
import { ErrorNote, Loading, Page } from "../ui.tsx";

const route = getRouteApi("/");

interface Range {
  label: string;
  /** How the range reads inside a sentence. */
  phrase: string;
  bucket: Bucket;
  /** Buckets in the range. */
  span: number;
}

const ranges: Record<RangeKey, Range> = {
  "24h": { label: "Last 24 hours", phrase: "last 24 hours", bucket: "hour", span: 24 },
  "7d": { label: "Last 7 days", phrase: "last 7 days", bucket: "day", span: 7 },
  "30d": { label: "Last 30 days", phrase: "last 30 days", bucket: "day", span: 30 },
  "90d": { label: "Last 90 days", phrase: "last 90 days", bucket: "day", span: 90 },
};

const hourMs = 3_600_000;
const dayMs = 86_400_000;

/**
 * The range ends at the end of the current bucket (hours and days in UTC, as the service counts them), so the
 * bounds, and with them the query, stay the same until the bucket turns over.
 */
function boundsOf(range: Range, now: number): { from: string; to: string } {
  const size = range.bucket === "hour" ? hourMs : dayMs;
  const to = Math.ceil((now + 1) / size) * size;
  return { from: new Date(to - range.span * size).toISOString(), to: new Date(to).toISOString() };
}

export function OverviewView() {
  const session = useSession();
  const search = route.useSearch();
  const navigate = route.useNavigate();
  const rangeId = useId();
  const admin = isAdmin(session);
  const rangeKey = search.range ?? "7d";
  const range = ranges[rangeKey];
  const userId = admin ? search.user : undefined;
  const { from, to } = boundsOf(range, Date.now());
  const path = admin ? "/admin/overview" : "/me/overview";

  const overview = useQuery({
    queryKey: ["overview", scopeOf(session), from, to, range.bucket, userId ?? null],
    queryFn: ({ signal }) =>
      api<Overview>(`${path}${query({ from, to, bucket: range.bucket, user_id: userId })}`, { signal }),
    placeholderData: keepPreviousData,
  });

  const whose = userId ? (overview.data?.by_user?.find((group) => group.key === userId)?.email ?? userId) : null;
  return (
    <Page
      title="Overview"
      actions={
        <div className="field inline">
          <label htmlFor={rangeId}>Range</label>
          <select
            id={rangeId}
            value={rangeKey}
            onChange={(event) =>
              void navigate({ search: (prev) => ({ ...prev, range: event.target.value as RangeKey }) })
            }
          >
            {rangeKeys.map((key) => (
              <option key={key} value={key}>
                {ranges[key].label}
              </option>
            ))}
          </select>
        </div>
      }
    >
      <p className="muted">
        {whose ? (
          <>
            Usage of <strong>{whose}</strong>.{" "}
            <Link to="/" search={{ range: search.range }}>
              Show everyone
            </Link>
          </>
        ) : admin ? (
          "Everyone's usage."
        ) : (
          "Your usage."
        )}{" "}
        Times are in your timezone ({localTimeZone()}); days are UTC days.
      </p>
      {hasUser(session) && !userId && <BudgetPanel />}
      {missingEndpoint(overview.error, userId) ? (
        <p className="panel notice" role="status">
          The overview is not available on this server yet.
        </p>
      ) : (
        <ErrorNote error={overview.error} prefix="Could not load the overview" />
      )}
      {overview.isPending && <Loading what="the overview" />}
      {overview.data && <OverviewBody overview={overview.data} range={range} admin={admin && !userId} />}
    </Page>
  );
}

/**
 * A server from before the overview endpoints answers 404 for the route itself: that is said calmly, not as an error.
 * A 404 naming a missing user (the user filter) keeps its detail.
 */
function missingEndpoint(error: unknown, userId: string | undefined): boolean {
  if (!(error instanceof ApiError) || error.status !== 404) return false;
  return !userId || (error.problem?.detail ?? "").startsWith("no route");
}

function OverviewBody({ overview, range, admin }: { overview: Overview; range: Range; admin: boolean }) {
  const { totals, series, bucket } = overview;
  const per = bucket === "hour" ? "per hour" : "per day";
  return (
    <>
      <Cards totals={totals} />
      <div className="chart-grid">
        <section className="panel">
          <h2>Requests</h2>
          <TimeChart
            label={`Requests ${per}, ${range.phrase}: ${formatCount(totals.requests)} in all`}
            data={series}
            bucket={bucket}
            kind="bar"
            series={[{ metric: "requests", name: "Requests", color: "var(--chart-1)" }]}
            format={formatCount}
            integer
          />
        </section>
        <section className="panel">
          <h2>Cost</h2>
          <TimeChart
            label={`Cost ${per}, ${range.phrase}: ${formatUsd(totals.cost_usd)} in all`}
            data={series}
            bucket={bucket}
            kind="bar"
            series={[{ metric: "cost_usd", name: "Cost", color: "var(--chart-2)" }]}
            format={formatUsd}
            tickFormat={formatUsdTick}
          />
        </section>
        <section className="panel">
          <h2>Latency</h2>
          <TimeChart
            label={`Latency p50 and p95 ${per}, ${range.phrase}: ${latencyWords(totals)}`}
            data={series}
            bucket={bucket}
            kind="line"
            series={[
              { metric: "latency_p50_ms", name: "p50", color: "var(--chart-1)" },
              { metric: "latency_p95_ms", name: "p95", color: "var(--chart-3)" },
            ]}
            format={formatMs}
          />
        </section>
        <section className="panel">
          <h2>Tokens</h2>
          <TimeChart
            label={`Tokens ${per}, ${range.phrase}: ${formatCount(totals.total_tokens)} in all`}
            data={series}
            bucket={bucket}
            kind="bar"
            series={[
              { metric: "prompt_tokens", name: "Prompt tokens", color: "var(--chart-1)" },
              { metric: "completion_tokens", name: "Completion tokens", color: "var(--chart-2)" },
            ]}
            format={formatCount}
            integer
          />
        </section>
      </div>
      <div className="chart-grid">
        <Breakdown title="By model" noun="model" groups={overview.by_model} range={range} />
        <Breakdown title="By provider" noun="provider" groups={overview.by_provider} range={range} />
        <Breakdown title="By type" noun="type" groups={overview.by_type} range={range} />
        {admin && overview.by_user && (
          <Breakdown title="By user" noun="user" groups={overview.by_user} range={range} linkUsers />
        )}
      </div>
    </>
  );
}

function latencyWords(totals: OverviewTotals): string {
  if (totals.latency_p50_ms === null && totals.latency_p95_ms === null) return "no completed requests";
  return `p50 ${formatMs(totals.latency_p50_ms)}, p95 ${formatMs(totals.latency_p95_ms)} in all`;
}

function Cards({ totals }: { totals: OverviewTotals }) {
  const cards: [string, string, string?][] = [
    ["Requests", formatCount(totals.requests)],
    [
      "Tokens",
      formatCount(totals.total_tokens),
      `${formatCount(totals.prompt_tokens)} prompt · ${formatCount(totals.completion_tokens)} completion`,
    ],
    ["Cost", formatUsd(totals.cost_usd)],
    [
      "Cache-hit rate",
      formatPercent(totals.cache_hit_rate),
      `${formatCount(totals.cache_hits)} ${totals.cache_hits === 1 ? "hit" : "hits"}`,
    ],
    ["Error rate", formatPercent(totals.error_rate), `${formatCount(totals.errors)} failed`],
    ["Latency p50", formatMs(totals.latency_p50_ms)],
    ["Latency p95", formatMs(totals.latency_p95_ms)],
  ];
  return (
    <dl className="cards">
      {cards.map(([name, value, note]) => (
        <div className="card" key={name}>
          <dt>{name}</dt>
          <dd>
            <span className="card-value">{value}</span>
            {note && <span className="card-note">{note}</span>}
          </dd>
        </div>
      ))}
    </dl>
  );
}

/** The chart shows the ten largest; the table below it has them all. */
const chartedGroups = 10;

function Breakdown(props: { title: string; noun: string; groups: OverviewGroup[]; range: Range; linkUsers?: boolean }) {
  const nameOf = (group: OverviewGroup) => group.email ?? group.key;
  const bars: GroupBar[] = props.groups.slice(0, chartedGroups).map((group) => ({
    name: nameOf(group),
    value: group.requests,
  }));
  const listed = bars.map((bar) => `${bar.name} ${formatCount(bar.value)}`).join(", ");
  const more = props.groups.length > chartedGroups ? `, and ${props.groups.length - chartedGroups} more` : "";
  const label = `Requests by ${props.noun}, ${props.range.phrase}: ${listed ? `${listed}${more}` : "none"}`;
  return (
    <section className="panel">
      <h2>{props.title}</h2>
      {props.groups.length === 0 ? (
        <p className="muted">No requests in this range.</p>
      ) : (
        <>
          <GroupChart label={label} data={bars} name="Requests" format={formatCount} />
          <div className="table-wrap">
            <table className="compact stacked">
              <caption className="visually-hidden">
                {props.title}, {props.range.phrase}
              </caption>
              <thead>
                <tr>
                  <th scope="col">{props.noun[0]?.toUpperCase() + props.noun.slice(1)}</th>
                  <th scope="col" className="num">
                    Requests
                  </th>
                  <th scope="col" className="num">
                    Tokens
                  </th>
                  <th scope="col" className="num">
                    Cost
                  </th>
                  <th scope="col" className="num">
                    Errors
                  </th>
                  <th scope="col" className="num">
                    p50
                  </th>
                </tr>
              </thead>
              <tbody>
                {props.groups.map((group) => (
                  <tr key={group.key}>
                    <th scope="row">
                      {props.linkUsers ? (
                        <Link to="/" search={(prev) => ({ ...prev, user: group.key })}>
                          {nameOf(group)}
                        </Link>
                      ) : (
                        nameOf(group)
                      )}
                    </th>
                    <td className="num" data-label="Requests">
                      {formatCount(group.requests)}
                    </td>
                    <td className="num" data-label="Tokens">
                      {formatCount(group.total_tokens)}
                    </td>
                    <td className="num" data-label="Cost">
                      {formatUsd(group.cost_usd)}
                    </td>
                    <td className="num" data-label="Errors">
                      {formatPercent(group.error_rate)}
                    </td>
                    <td className="num" data-label="p50">
                      {formatMs(group.latency_p50_ms)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

/** What the caller may still spend and send: the month's budget and this minute's rate limits. */
function BudgetPanel() {
  const session = useSession();
  const me = useQuery({ queryKey: ["me", scopeOf(session)], queryFn: ({ signal }) => api<Me>("/me", { signal }) });
  if (me.error) return <ErrorNote error={me.error} prefix="Could not load your budget and limits" />;
  if (!me.data) return <Loading what="your budget and limits" />;
  const { limits, usage } = me.data;
  const month = usage.this_month;
  const budget = limits.monthly_budget_usd;
  const remaining = month.budget_remaining_usd;
  return (
    <section className="panel limits" aria-labelledby="limits-title">
      <h2 id="limits-title">Budget and limits</h2>
      <div className="gauges">
        <Gauge
          label="Spent this month"
          value={month.cost_usd}
          max={budget}
          text={
            budget === null
              ? `${formatUsd(month.cost_usd)}; no monthly budget`
              : `${formatUsd(month.cost_usd)} of ${formatUsd(budget)}; ${formatUsd(remaining ?? Math.max(0, budget - month.cost_usd))} left`
          }
        />
        <RateGauge
          label="Requests this minute"
          window={usage.rate_limits.requests}
          limit={limits.rpm}
          used={usage.last_minute.requests}
          unit="requests per minute"
        />
        <RateGauge
          label="Tokens this minute"
          window={usage.rate_limits.tokens}
          limit={limits.tpm}
          used={usage.last_minute.total_tokens}
          unit="tokens per minute"
        />
      </div>
    </section>
  );
}

/** The limiter's own window when it has one (it knows the key's limits too), else the user's limit and usage. */
function RateGauge(props: {
  label: string;
  window: RateWindow | null;
  limit: number | null;
  used: number;
  unit: string;
}) {
  const limit = props.window?.limit ?? props.limit;
  const used = props.window ? props.window.limit - props.window.remaining : props.used;
  const text =
    limit === null
      ? `${formatCount(used)}; no limit`
      : `${formatCount(used)} of ${formatCount(limit)} ${props.unit}; ${formatCount(Math.max(0, limit - used))} left`;
  return <Gauge label={props.label} value={used} max={limit} text={text} />;
}

function Gauge({ label, value, max, text }: { label: string; value: number; max: number | null; text: string }) {
  const id = useId();
  const textId = useId();
  if (max === null || max <= 0) {
    // Nothing to measure against: the words say it.
    return (
      <div className="gauge">
        <span className="gauge-label">{label}</span>
        <span className="gauge-text">{text}</span>
      </div>
    );
  }
  return (
    <div className="gauge">
      <label htmlFor={id}>{label}</label>
      <meter
        id={id}
        min={0}
        max={max}
        low={max * 0.75}
        high={max * 0.9}
        optimum={0}
        value={Math.min(value, max)}
        aria-describedby={textId}
      >
        {text}
      </meter>
      <span id={textId} className="gauge-text">
        {text}
      </span>
    </div>
  );
}
