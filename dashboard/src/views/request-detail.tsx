// One request: what was asked, how it went, where its time went. The output stays hidden until asked for, since it
// can be long (an embedding) or sensitive.
import { useQuery } from "@tanstack/react-query";
import { getRouteApi, Link, useCanGoBack, useRouter } from "@tanstack/react-router";
import { type ReactNode, useId, useState } from "react";
import { api } from "../api.ts";
import type { RequestDetail, RequestSource } from "../api-types.ts";
import { formatCount, formatDateTime, formatJson, formatMs, formatUsd } from "../format.ts";
import { isAdmin, scopeOf, useSession } from "../session.tsx";
import { ErrorNote, Loading, Page } from "../ui.tsx";

const route = getRouteApi("/requests/$id");

export function RequestDetailView() {
  const session = useSession();
  const { id } = route.useParams();
  const admin = isAdmin(session);
  const router = useRouter();
  const canGoBack = useCanGoBack();
  const path = `${admin ? "/admin/requests" : "/requests"}/${encodeURIComponent(id)}`;
  const request = useQuery({
    queryKey: ["request", scopeOf(session), id],
    queryFn: ({ signal }) => api<RequestDetail>(path, { signal }),
  });

  return (
    <Page
      title={`Request ${id}`}
      actions={
        <Link
          to="/requests"
          className="button secondary"
          onClick={(event) => {
            // Back in history when the list led here: its filters and page come back with it.
            if (!canGoBack) return;
            event.preventDefault();
            router.history.back();
          }}
        >
          Back to requests
        </Link>
      }
    >
      <ErrorNote error={request.error} prefix="Could not load this request" />
      {request.isPending && <Loading what="the request" />}
      {request.data && <Detail request={request.data} admin={admin} />}
    </Page>
  );
}

const sourceNames: Record<RequestSource, string> = {
  native: "native API (POST /requests)",
  openai: "OpenAI-compatible API (/v1)",
  anthropic: "Anthropic-compatible API (/v1/messages)",
};

function Detail({ request, admin }: { request: RequestDetail; admin: boolean }) {
  const [showOutput, setShowOutput] = useState(false);
  const outputId = useId();
  const { usage } = request;
  const facts: [string, ReactNode][] = [
    ["Type", request.type],
    [
      "Status",
      <span key="status" className={`status status-${request.status}`}>
        {request.status}
      </span>,
    ],
    ["Model", request.model],
    ["Provider", request.provider],
    ["Source", request.source ? sourceNames[request.source] : "—"],
    ...(admin && request.user_id ? ([["User", request.user_id]] as [string, ReactNode][]) : []),
    [
      "Usage",
      `${formatCount(usage.prompt_tokens)} prompt + ${formatCount(usage.completion_tokens)} completion = ${formatCount(usage.total_tokens)} tokens`,
    ],
    ["Cost", formatUsd(request.cost_usd)],
    ["Cache", request.cached ? "hit (answered from the cache)" : "miss"],
    ["Latency", formatMs(request.latency_ms)],
    ["Created", formatDateTime(request.created_at)],
    ["Completed", formatDateTime(request.completed_at)],
    ["Retries", request.retries === undefined ? "—" : formatCount(request.retries)],
  ];
  return (
    <>
      <section className="panel">
        <h2>Summary</h2>
        <dl className="facts">
          {facts.map(([name, value]) => (
            <div key={name}>
              <dt>{name}</dt>
              <dd>{value}</dd>
            </div>
          ))}
        </dl>
        {request.error && (
          <p className="error">
            <strong>{request.error.code}</strong>: {request.error.message}
          </p>
        )}
      </section>

      <section className="panel">
        <h2>Where its time went</h2>
        <TimingsBar request={request} />
      </section>

      <section className="panel">
        <h2>Attempts</h2>
        {request.attempts && request.attempts.length > 0 ? (
          <ol className="attempts">
            {request.attempts.map((attempt, index) => (
              // Attempts have no id: their order is what identifies them.
              // biome-ignore lint/suspicious/noArrayIndexKey: the list never reorders
              <li key={index}>
                {attempt.model}: <span className={attempt.outcome === "ok" ? "ok" : "warn"}>{attempt.outcome}</span>
              </li>
            ))}
          </ol>
        ) : (
          <p className="muted">{request.cached ? "None: answered from the cache." : "None recorded."}</p>
        )}
      </section>

      <section className="panel">
        <h2>Input</h2>
        {request.input === null ? (
          <p className="muted">Deleted.</p>
        ) : (
          <pre className="code">{formatJson(request.input)}</pre>
        )}
        <h3>Options</h3>
        {request.options && Object.keys(request.options).length > 0 ? (
          <pre className="code">{formatJson(request.options)}</pre>
        ) : (
          <p className="muted">None.</p>
        )}
        {Object.keys(request.metadata ?? {}).length > 0 && (
          <>
            <h3>Metadata</h3>
            <pre className="code">{formatJson(request.metadata)}</pre>
          </>
        )}
      </section>

      <section className="panel">
        <h2>Output</h2>
        <button
          type="button"
          className="secondary"
          aria-expanded={showOutput}
          aria-controls={outputId}
          onClick={() => setShowOutput((shown) => !shown)}
        >
          {showOutput ? "Hide output" : "Show output"}
        </button>
        <div id={outputId} hidden={!showOutput}>
          {showOutput &&
            (request.output === null ? (
              <p className="muted">No output.</p>
            ) : (
              <pre className="code">{formatJson(request.output)}</pre>
            ))}
        </div>
      </section>
    </>
  );
}

/** One share of a request's latency; `tone` picks its colour. */
interface Share {
  key: string;
  name: string;
  ms: number;
  tone: "entry" | "upstream" | "service";
}

/**
 * Where the latency went: the entry (limits and cache lookup, one round trip), the upstream, and what they leave
 * over (the service's other work). Records stored before the entry was measured split only by the upstream.
 * null: nothing to split it by.
 */
function sharesOf(request: RequestDetail): { shares: Share[]; note?: string } | null {
  const total = request.latency_ms;
  const measured: Share[] = [];
  if (typeof request.entry_ms === "number") {
    measured.push({ key: "entry", name: "Limits and cache lookup", ms: request.entry_ms, tone: "entry" });
  }
  if (typeof request.upstream_ms === "number") {
    measured.push({
      key: "upstream",
      name: `Upstream (${request.provider})`,
      ms: request.upstream_ms,
      tone: "upstream",
    });
  }
  const note = request.cached ? "Answered from the cache: no upstream call was made." : undefined;
  if (measured.length === 0) {
    return request.cached
      ? { shares: [{ key: "service", name: "This service", ms: total, tone: "service" }], note }
      : null;
  }
  const rest = Math.max(0, total - measured.reduce((sum, share) => sum + share.ms, 0));
  return { shares: [...measured, { key: "other", name: "Other service work", ms: rest, tone: "service" }], note };
}

const shareOf = (ms: number, total: number): string => (total > 0 ? ` (${Math.round((ms / total) * 100)}%)` : "");

/** The request's latency split into shares, as a bar and in words. */
function TimingsBar({ request }: { request: RequestDetail }) {
  const total = request.latency_ms;
  const split = sharesOf(request);
  if (!split) {
    return (
      <p className="muted">
        {formatMs(total)} in all. No part of its time was recorded for this request, so it cannot be split.
      </p>
    );
  }
  const { shares, note } = split;
  const sum = shares.reduce((all, share) => all + share.ms, 0);
  const scale = Math.max(sum, total, 1);
  const words = shares.map((share) => `${share.name} ${formatMs(share.ms)}`).join(", ");
  return (
    <>
      <p className="timings-total">
        <strong>{formatMs(total)}</strong> in all{note ? `. ${note}` : "."} It ends when the record is ready to store:
        the commit that the answer then waits for is not in it.
      </p>
      <div className="timings" role="img" aria-label={`Where its time went, of ${formatMs(total)}: ${words}`}>
        {shares.map((share) => (
          <span
            key={share.key}
            className={`timing timing-${share.tone}`}
            style={{ width: `${(share.ms / scale) * 100}%` }}
            title={`${share.name}: ${formatMs(share.ms)}`}
          />
        ))}
      </div>
      <ul className="legend">
        {shares.map((share) => (
          <li key={share.key}>
            <span className={`swatch timing-${share.tone}`} aria-hidden="true" />
            {share.name}: {formatMs(share.ms)}
            <span className="muted">{shareOf(share.ms, total)}</span>
          </li>
        ))}
      </ul>
    </>
  );
}
