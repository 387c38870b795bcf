// Users (admins): everyone who may call the service, their limits, and a way to turn them off.
import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { type FormEvent, useId, useState } from "react";
import { api, query } from "../api.ts";
import type { CreatedKey, Page as ApiPage, Role, User } from "../api-types.ts";
import { formatDateTime } from "../format.ts";
import { limitText, parseBudget, parsePerMinute } from "../limits.ts";
import { NewKeyPanel } from "../new-key.tsx";
import { isAdmin, scopeOf, useSession } from "../session.tsx";
import { ErrorNote, Loading, NotAllowed, Page } from "../ui.tsx";

export function UsersView() {
  const session = useSession();
  if (!isAdmin(session)) return <NotAllowed title="Users" why="Only admins may see and change users." />;
  return <Users />;
}

const usersKey = (scope: string) => ["admin-users", scope];

function Users() {
  const session = useSession();
  const scope = scopeOf(session);
  const [issued, setIssued] = useState<{ key: string; email: string } | null>(null);
  const users = useInfiniteQuery({
    queryKey: usersKey(scope),
    queryFn: ({ pageParam, signal }) =>
      api<ApiPage<User>>(`/admin/users${query({ limit: 100, cursor: pageParam })}`, { signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
  });
  const list = users.data?.pages.flatMap((page) => page.data) ?? [];

  return (
    <Page title="Users">
      {issued && <NewKeyPanel apiKey={issued.key} owner={issued.email} onDone={() => setIssued(null)} />}
      <CreateUser />
      <section className="panel flush" aria-labelledby="users-title">
        <h2 id="users-title" className="pad">
          All users
        </h2>
        <ErrorNote error={users.error} prefix="Could not load the users" />
        {users.isPending && <Loading what="users" />}
        {users.data && (
          <div className="table-wrap">
            <table className="users stacked">
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Limits</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((user) => (
                  <UserRow key={user.id} user={user} onKey={(key) => setIssued({ key, email: user.email })} />
                ))}
                {list.length === 0 && (
                  <tr>
                    <td colSpan={3} className="empty">
                      No users yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        )}
        {users.hasNextPage && (
          <p className="pad">
            <button
              type="button"
              className="secondary"
              disabled={users.isFetchingNextPage}
              onClick={() => void users.fetchNextPage()}
            >
              Load more users
            </button>
          </p>
        )}
      </section>
    </Page>
  );
}

function CreateUser() {
  const session = useSession();
  const client = useQueryClient();
  const ids = { email: useId(), name: useId(), role: useId() };
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("user");
  const create = useMutation({
    mutationFn: () =>
      api<User>("/admin/users", {
        method: "POST",
        body: { email: email.trim(), role, ...(name.trim() && { name: name.trim() }) },
      }),
    onSuccess: () => {
      setEmail("");
      setName("");
      setRole("user");
      void client.invalidateQueries({ queryKey: usersKey(scopeOf(session)) });
    },
  });

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    create.mutate();
  }

  return (
    <form className="panel" onSubmit={submit} aria-labelledby="create-user-title">
      <h2 id="create-user-title">New user</h2>
      <div className="row">
        <div className="field grow">
          <label htmlFor={ids.email}>Email</label>
          <input
            id={ids.email}
            type="email"
            required
            maxLength={254}
            autoComplete="off"
            value={email}
            onChange={(event) => setEmail(event.target.value)}
          />
        </div>
        <div className="field grow">
          <label htmlFor={ids.name}>Name</label>
          <input
            id={ids.name}
            type="text"
            maxLength={200}
            autoComplete="off"
            value={name}
            onChange={(event) => setName(event.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={ids.role}>Role</label>
          <select id={ids.role} value={role} onChange={(event) => setRole(event.target.value as Role)}>
            <option value="user">user</option>
            <option value="admin">admin</option>
          </select>
        </div>
      </div>
      <button type="submit" disabled={create.isPending}>
        Create user
      </button>
      {create.data && (
        <p className="ok" role="status">
          Created {create.data.email}. Issue a key for them below so that they can sign in.
        </p>
      )}
      <ErrorNote error={create.error} prefix="Could not create the user" />
    </form>
  );
}

function UserRow({ user, onKey }: { user: User; onKey: (key: string) => void }) {
  const session = useSession();
  const client = useQueryClient();
  const ids = { rpm: useId(), tpm: useId(), budget: useId() };
  const [rpm, setRpm] = useState(limitText(user.limits.rpm));
  const [tpm, setTpm] = useState(limitText(user.limits.tpm));
  const [budget, setBudget] = useState(limitText(user.limits.monthly_budget_usd));
  const [saved, setSaved] = useState(false);
  const path = `/admin/users/${encodeURIComponent(user.id)}`;
  // Disabling oneself would end this session with no admin left signed in to undo it.
  const self = session.user?.id === user.id;
  const refresh = () => void client.invalidateQueries({ queryKey: usersKey(scopeOf(session)) });

  const saveLimits = useMutation({
    mutationFn: () =>
      api<User>(path, {
        method: "PATCH",
        body: {
          limits: {
            rpm: parsePerMinute(rpm, "Requests per minute"),
            tpm: parsePerMinute(tpm, "Tokens per minute"),
            monthly_budget_usd: parseBudget(budget, "Monthly budget"),
          },
        },
      }),
    onMutate: () => setSaved(false),
    onSuccess: () => {
      setSaved(true);
      refresh();
    },
  });
  const toggle = useMutation({
    mutationFn: () => api<User>(path, { method: "PATCH", body: { disabled: !user.disabled } }),
    onSuccess: refresh,
  });
  const issueKey = useMutation({
    mutationFn: () => api<CreatedKey>(`${path}/keys`, { method: "POST", body: {} }),
    onSuccess: (key) => onKey(key.key),
  });

  function submitLimits(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    saveLimits.mutate();
  }

  return (
    <tr className={user.disabled ? "inactive" : undefined}>
      <th scope="row">
        {user.email}
        {self && <span className="badge">you</span>}
        <span className="block">
          {user.name ?? "no name"} · {user.role} · {user.disabled ? "Disabled" : "Active"}
        </span>
        <span className="hint block">since {formatDateTime(user.created_at)}</span>
      </th>
      <td className="limits-cell">
        <form className="limits-form" onSubmit={submitLimits}>
          <div className="field">
            <label htmlFor={ids.rpm}>
              Requests per minute
              <span className="visually-hidden"> for {user.email}</span>
            </label>
            <input
              id={ids.rpm}
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              placeholder="unlimited"
              value={rpm}
              onChange={(event) => setRpm(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={ids.tpm}>
              Tokens per minute
              <span className="visually-hidden"> for {user.email}</span>
            </label>
            <input
              id={ids.tpm}
              type="number"
              min={1}
              step={1}
              inputMode="numeric"
              placeholder="unlimited"
              value={tpm}
              onChange={(event) => setTpm(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={ids.budget}>
              Monthly budget (USD)
              <span className="visually-hidden"> for {user.email}</span>
            </label>
            <input
              id={ids.budget}
              type="number"
              min={0}
              step="any"
              inputMode="decimal"
              placeholder="unlimited"
              value={budget}
              onChange={(event) => setBudget(event.target.value)}
            />
          </div>
          <button type="submit" className="secondary" disabled={saveLimits.isPending}>
            Save limits
          </button>
          {saved && (
            <span className="ok" role="status">
              Saved.
            </span>
          )}
          <ErrorNote error={saveLimits.error} />
        </form>
      </td>
      <td className="actions">
        <div className="stack">
          <button
            type="button"
            className={user.disabled ? "secondary" : "danger"}
            disabled={toggle.isPending || (self && !user.disabled)}
            title={self ? "You cannot disable your own account: it would sign you out at once." : undefined}
            onClick={() => toggle.mutate()}
          >
            {user.disabled ? "Enable" : "Disable"}
          </button>
          <button
            type="button"
            className="secondary"
            disabled={issueKey.isPending || user.disabled}
            onClick={() => issueKey.mutate()}
          >
            Issue key
          </button>
          <Link to="/" search={{ user: user.id }}>
            Usage
          </Link>
        </div>
        <ErrorNote error={toggle.error ?? issueKey.error} />
      </td>
    </tr>
  );
}
