// Keys: the caller's own API keys. A new key is shown once; revoking one ends it (and any session opened with it).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useId, useState } from "react";
import { api } from "../api.ts";
import type { ApiKey, CreatedKey, Me } from "../api-types.ts";
import { formatCount, formatDateTime } from "../format.ts";
import { parsePerMinute } from "../limits.ts";
import { NewKeyPanel } from "../new-key.tsx";
import { hasUser, scopeOf, useSession } from "../session.tsx";
import { ErrorNote, Loading, NoUserOfYourOwn, Page } from "../ui.tsx";

export function KeysView() {
  const session = useSession();
  if (!hasUser(session)) return <NoUserOfYourOwn title="Keys" />;
  return <Keys />;
}

function Keys() {
  const session = useSession();
  const client = useQueryClient();
  const scope = scopeOf(session);
  const listKey = ["me-keys", scope];
  const ids = { name: useId(), rpm: useId(), tpm: useId() };
  const [name, setName] = useState("");
  const [rpm, setRpm] = useState("");
  const [tpm, setTpm] = useState("");
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);

  const keys = useQuery({
    queryKey: listKey,
    queryFn: ({ signal }) => api<{ data: ApiKey[] }>("/me/keys", { signal }),
  });
  // The key this session was opened with, to warn before revoking it.
  const me = useQuery({ queryKey: ["me", scope], queryFn: ({ signal }) => api<Me>("/me", { signal }) });
  const sessionKeyId = me.data?.key?.id;

  const create = useMutation({
    mutationFn: () => {
      const limits = { rpm: parsePerMinute(rpm, "Requests per minute"), tpm: parsePerMinute(tpm, "Tokens per minute") };
      const hasLimits = limits.rpm !== null || limits.tpm !== null;
      return api<CreatedKey>("/me/keys", {
        method: "POST",
        body: { ...(name.trim() && { name: name.trim() }), ...(hasLimits && { limits }) },
      });
    },
    onSuccess: (key) => {
      setCreated(key);
      setName("");
      setRpm("");
      setTpm("");
      void client.invalidateQueries({ queryKey: listKey });
    },
  });

  const revoke = useMutation({
    mutationFn: (id: string) => api<void>(`/me/keys/${encodeURIComponent(id)}`, { method: "DELETE" }),
    onSettled: () => {
      setConfirming(null);
      void client.invalidateQueries({ queryKey: listKey });
    },
  });

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    create.mutate();
  }

  const now = Date.now();
  return (
    <Page title="Keys">
      {created && <NewKeyPanel apiKey={created.key} onDone={() => setCreated(null)} />}

      <form className="panel" onSubmit={submit} aria-labelledby="create-key-title">
        <h2 id="create-key-title">New key</h2>
        <div className="row">
          <div className="field grow">
            <label htmlFor={ids.name}>Name</label>
            <input
              id={ids.name}
              type="text"
              value={name}
              maxLength={200}
              placeholder="e.g. search backend"
              onChange={(event) => setName(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={ids.rpm}>Requests per minute</label>
            <input
              id={ids.rpm}
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              value={rpm}
              placeholder="your limit"
              onChange={(event) => setRpm(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={ids.tpm}>Tokens per minute</label>
            <input
              id={ids.tpm}
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              value={tpm}
              placeholder="your limit"
              onChange={(event) => setTpm(event.target.value)}
            />
          </div>
        </div>
        <p className="hint">Limits are optional: a key's own limits apply on top of yours.</p>
        <button type="submit" disabled={create.isPending}>
          Create key
        </button>
        <ErrorNote error={create.error} prefix="Could not create the key" />
      </form>

      <section className="panel flush" aria-labelledby="keys-title">
        <h2 id="keys-title" className="pad">
          Your keys
        </h2>
        <ErrorNote error={keys.error} prefix="Could not load your keys" />
        <ErrorNote error={revoke.error} prefix="Could not revoke the key" />
        {keys.isPending && <Loading what="your keys" />}
        {keys.data && (
          <div className="table-wrap">
            <table className="keys stacked">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Prefix</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Revoked</th>
                  <th scope="col">Limits</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.data.data.map((key) => {
                  const expired = key.expires_at !== null && Date.parse(key.expires_at) <= now;
                  const active = key.revoked_at === null && !expired;
                  const current = key.id === sessionKeyId;
                  return (
                    <tr key={key.id} className={active ? undefined : "inactive"}>
                      <td className="key-name">
                        {key.name ?? <span className="muted">unnamed</span>}
                        {current && <span className="badge">this session</span>}
                      </td>
                      <td data-label="Prefix">
                        <code>{key.prefix}…</code>
                      </td>
                      <td data-label="Created">{formatDateTime(key.created_at)}</td>
                      <td data-label="Expires">
                        {key.expires_at ? `${formatDateTime(key.expires_at)}${expired ? " (expired)" : ""}` : "never"}
                      </td>
                      <td data-label="Revoked">{key.revoked_at ? formatDateTime(key.revoked_at) : "—"}</td>
                      <td data-label="Limits">{keyLimits(key)}</td>
                      <td className="actions">
                        {active &&
                          (confirming === key.id ? (
                            <span className="confirm">
                              {current && <span className="hint">This signs you out.</span>}
                              <button
                                type="button"
                                className="danger"
                                disabled={revoke.isPending}
                                onClick={() => revoke.mutate(key.id)}
                              >
                                Confirm revoke
                              </button>
                              <button type="button" className="secondary" onClick={() => setConfirming(null)}>
                                Cancel
                              </button>
                            </span>
                          ) : (
                            <button type="button" className="secondary" onClick={() => setConfirming(key.id)}>
                              Revoke
                            </button>
                          ))}
                      </td>
                    </tr>
                  );
                })}
                {keys.data.data.length === 0 && (
                  <tr>
                    <td colSpan={7} className="empty">
                      No keys yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </Page>
  );
}

function keyLimits(key: ApiKey): string {
  const parts = [
    key.limits.rpm === null ? null : `${formatCount(key.limits.rpm)} rpm`,
    key.limits.tpm === null ? null : `${formatCount(key.limits.tpm)} tpm`,
  ].filter((part) => part !== null);
  return parts.length > 0 ? parts.join(" · ") : "yours";
}
