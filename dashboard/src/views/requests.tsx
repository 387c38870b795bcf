// Requests: the caller's requests (an admin's: everyone's), newest first, with filters and cursor paging. Filters and
// the cursors live in the route's search, so coming back from a request's detail finds the same page.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { getRouteApi, Link, useNavigate } from "@tanstack/react-router";
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable } from "@tanstack/react-table";
import { type MouseEvent, useEffect, useId, useMemo, useRef, useState } from "react";
import { api, query } from "../api.ts";
import { type Page as ApiPage, type RequestItem, requestStatuses, requestTypes } from "../api-types.ts";
import { formatCount, formatMs, formatShortDateTime, formatUsd } from "../format.ts";
import type { RequestsSearch } from "../search.ts";
import { isAdmin, scopeOf, useSession } from "../session.tsx";
import { ErrorNote, Loading, Page } from "../ui.tsx";

const route = getRouteApi("/requests");
const pageSize = 25;

/** A day picked in the browser's timezone, as the instant it starts. */
const startOfDay = (day: string): string => new Date(`${day}T00:00:00`).toISOString();

/** The end of a picked day ("To" includes the day): the start of the next one. */
function endOfDay(day: string): string {
  const next = new Date(`${day}T00:00:00`);
  next.setDate(next.getDate() + 1);
  return next.toISOString();
}

const column = createColumnHelper<RequestItem>();

export function RequestsView() {
  const session = useSession();
  const admin = isAdmin(session);
  const search = route.useSearch();
  const navigate = route.useNavigate();
  const goTo = useNavigate();
  const cursors = search.cursors ?? [];
  const cursor = cursors.at(-1);

  const filters = {
    type: search.type,
    status: search.status,
    model: search.model,
    provider: search.provider,
    from: search.from ? startOfDay(search.from) : undefined,
    to: search.to ? endOfDay(search.to) : undefined,
    user_id: admin ? search.user : undefined,
  };
  const path = admin ? "/admin/requests" : "/requests";
  const list = useQuery({
    queryKey: ["requests", scopeOf(session), filters, cursor ?? null],
    queryFn: ({ signal }) =>
      api<ApiPage<RequestItem>>(`${path}${query({ ...filters, limit: pageSize, cursor })}`, { signal }),
    placeholderData: keepPreviousData,
  });

  /** A changed filter starts from the first page again. */
  const setFilter = (name: keyof RequestsSearch, value: string | undefined) =>
    void navigate({ search: (prev) => ({ ...prev, [name]: value || undefined, cursors: undefined }) });

  const columns = useMemo(
    () => [
      column.accessor("created_at", {
        header: "Created",
        cell: (info) => formatShortDateTime(info.getValue()),
        meta: { className: "created" },
      }),
      column.accessor("type", { header: "Type", meta: { label: "Type", className: "type" } }),
      column.accessor("status", {
        header: "Status",
        cell: (info) => <span className={`status status-${info.getValue()}`}>{info.getValue()}</span>,
        meta: { className: "status-cell" },
      }),
      column.accessor("model", { header: "Model", meta: { label: "Model", className: "model" } }),
      column.accessor("provider", { header: "Provider", meta: { label: "Provider" } }),
      ...(admin
        ? [
            column.accessor((row) => row.user_id ?? "", {
              id: "user",
              header: "User",
              cell: (info) => <ShortId id={info.getValue()} />,
              meta: { label: "User", className: "user-id" },
            }),
          ]
        : []),
      column.accessor((row) => row.usage.total_tokens, {
        id: "tokens",
        header: "Tokens",
        cell: (info) => formatCount(info.getValue()),
        meta: { numeric: true, label: "Tokens" },
      }),
      column.accessor("cost_usd", {
        header: "Cost",
        cell: (info) => formatUsd(info.getValue()),
        meta: { numeric: true, label: "Cost" },
      }),
      column.accessor("latency_ms", {
        header: "Latency",
        cell: (info) => formatMs(info.getValue()),
        meta: { numeric: true, label: "Latency" },
      }),
      column.accessor("cached", {
        header: "Cache",
        cell: (info) => (info.getValue() ? "hit" : "—"),
        meta: { label: "Cache" },
      }),
      column.display({
        id: "details",
        header: () => <span className="visually-hidden">Details</span>,
        cell: (info) => (
          <Link to="/requests/$id" params={{ id: info.row.original.id }}>
            Details
          </Link>
        ),
        meta: { className: "details" },
      }),
    ],
    [admin],
  );

  const rows = list.data?.data ?? [];
  const table = useReactTable({ data: rows, columns, getCoreRowModel: getCoreRowModel(), getRowId: (row) => row.id });

  /** A click anywhere on a row opens it; its "Details" link is the way there for keyboards and screen readers. */
  function openRow(event: MouseEvent<HTMLTableRowElement>, id: string) {
    if ((event.target as HTMLElement).closest("a, button, input, select, textarea")) return;
    if (window.getSelection()?.toString()) return; // selecting text to copy is not a click on the row
    void goTo({ to: "/requests/$id", params: { id } });
  }

  const hasFilters = Boolean(
    search.type || search.status || search.model || search.provider || search.from || search.to || search.user,
  );
  return (
    <Page title="Requests">
      <form className="filters panel" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
        <SelectFilter
          label="Type"
          value={search.type}
          all="All types"
          options={requestTypes}
          onChange={(value) => setFilter("type", value)}
        />
        <SelectFilter
          label="Status"
          value={search.status}
          all="All statuses"
          options={requestStatuses}
          onChange={(value) => setFilter("status", value)}
        />
        <TextFilter label="Model" value={search.model} onChange={(value) => setFilter("model", value)} />
        <TextFilter label="Provider" value={search.provider} onChange={(value) => setFilter("provider", value)} />
        <DateFilter label="From" value={search.from} onChange={(value) => setFilter("from", value)} />
        <DateFilter label="To" value={search.to} onChange={(value) => setFilter("to", value)} />
        {admin && (
          <TextFilter
            label="User"
            value={search.user}
            placeholder="usr_…"
            onChange={(value) => setFilter("user", value)}
          />
        )}
        {hasFilters && (
          <button type="button" className="secondary" onClick={() => void navigate({ search: {} })}>
            Clear filters
          </button>
        )}
      </form>

      <ErrorNote error={list.error} prefix="Could not load the requests" />
      {list.isPending ? (
        <Loading what="requests" />
      ) : (
        <div className="table-wrap panel flush">
          <table className="requests stacked" aria-busy={list.isFetching}>
            <caption className="visually-hidden">Requests, newest first</caption>
            <thead>
              {table.getHeaderGroups().map((group) => (
                <tr key={group.id}>
                  {group.headers.map((header) => (
                    <th key={header.id} scope="col" className={cellClass(header.column.columnDef.meta)}>
                      {flexRender(header.column.columnDef.header, header.getContext())}
                    </th>
                  ))}
                </tr>
              ))}
            </thead>
            <tbody>
              {table.getRowModel().rows.map((row) => (
                <tr key={row.id} className="clickable" onClick={(event) => openRow(event, row.original.id)}>
                  {row.getVisibleCells().map((cell) => (
                    <td
                      key={cell.id}
                      className={cellClass(cell.column.columnDef.meta)}
                      data-label={cell.column.columnDef.meta?.label}
                    >
                      {flexRender(cell.column.columnDef.cell, cell.getContext())}
                    </td>
                  ))}
                </tr>
              ))}
              {rows.length === 0 && (
                <tr>
                  <td colSpan={columns.length} className="empty">
                    {hasFilters ? "No requests match these filters." : "No requests yet."}
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}

      <nav className="pager" aria-label="Pages">
        <button
          type="button"
          className="secondary"
          disabled={cursors.length === 0}
          onClick={() =>
            void navigate({
              search: (prev) => ({ ...prev, cursors: cursors.length > 1 ? cursors.slice(0, -1) : undefined }),
            })
          }
        >
          Previous page
        </button>
        <span className="muted">Page {cursors.length + 1}</span>
        <button
          type="button"
          className="secondary"
          disabled={!list.data?.next_cursor || list.isPlaceholderData}
          onClick={() => {
            const next = list.data?.next_cursor;
            if (next) void navigate({ search: (prev) => ({ ...prev, cursors: [...cursors, next] }) });
          }}
        >
          Next page
        </button>
      </nav>
    </Page>
  );
}

declare module "@tanstack/react-table" {
  interface ColumnMeta<TData, TValue> {
    /** Right-aligned, for numbers. */
    numeric?: boolean;
    className?: string;
    /** The cell's name when a narrow screen shows rows as cards, without the header row above them. */
    label?: string;
  }
}

/** Ids share their first characters (a timestamp); the end tells them apart. The whole id is in the title. */
function ShortId({ id }: { id: string }) {
  const cut = id.indexOf("_") + 1;
  const short = id.length > cut + 8 ? `${id.slice(0, cut)}…${id.slice(-6)}` : id;
  return (
    <span className="mono" title={id}>
      {short}
    </span>
  );
}

const cellClass = (meta: { numeric?: boolean; className?: string } | undefined) =>
  [meta?.numeric && "num", meta?.className].filter(Boolean).join(" ") || undefined;

function SelectFilter(props: {
  label: string;
  value: string | undefined;
  all: string;
  options: readonly string[];
  onChange: (value: string | undefined) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} value={props.value ?? ""} onChange={(event) => props.onChange(event.target.value || undefined)}>
        <option value="">{props.all}</option>
        {props.options.map((option) => (
          <option key={option} value={option}>
            {option}
          </option>
        ))}
      </select>
    </div>
  );
}

/** Applied a moment after typing stops (or at once on Enter or leaving the field), not on every keystroke. */
function TextFilter(props: {
  label: string;
  value: string | undefined;
  placeholder?: string;
  onChange: (value: string | undefined) => void;
}) {
  const id = useId();
  const applied = props.value ?? "";
  const [draft, setDraft] = useState(applied);
  // The latest handler, so that a re-render of the page does not restart the wait.
  const onChange = useRef(props.onChange);
  onChange.current = props.onChange;

  useEffect(() => setDraft(applied), [applied]);
  useEffect(() => {
    if (draft.trim() === applied) return;
    const timer = window.setTimeout(() => onChange.current(draft.trim() || undefined), 400);
    return () => window.clearTimeout(timer);
  }, [draft, applied]);

  const applyNow = () => {
    if (draft.trim() !== applied) onChange.current(draft.trim() || undefined);
  };
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        type="text"
        value={draft}
        placeholder={props.placeholder}
        spellCheck={false}
        autoComplete="off"
        onChange={(event) => setDraft(event.target.value)}
        onBlur={applyNow}
        onKeyDown={(event) => {
          if (event.key === "Enter") applyNow();
        }}
      />
    </div>
  );
}

function DateFilter(props: {
  label: string;
  value: string | undefined;
  onChange: (value: string | undefined) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        type="date"
        value={props.value ?? ""}
        onChange={(event) => props.onChange(event.target.value || undefined)}
      />
    </div>
  );
}
