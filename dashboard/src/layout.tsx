// The frame around every view: sign-in when there is no session, else the header, the navigation and the view.
import { Link, Outlet, useRouterState } from "@tanstack/react-router";
import { useEffect, useId, useState } from "react";
import type { Session } from "./api-types.ts";
import { hasUser, isAdmin, SessionProvider, useSessionQuery, useSignOut } from "./session.tsx";
import { ErrorNote, Loading, Page } from "./ui.tsx";
import { SignInView } from "./views/sign-in.tsx";

export function Shell() {
  const session = useSessionQuery();
  if (session.isPending) return <Loading what="the dashboard" />;
  if (!session.data) return <SignInView checkError={session.error} />;
  return (
    <SessionProvider value={session.data}>
      <Frame session={session.data} />
    </SessionProvider>
  );
}

function Frame({ session }: { session: Session }) {
  const [menuOpen, setMenuOpen] = useState(false);
  const navId = useId();
  const path = useRouterState({ select: (state) => state.location.pathname });
  const signOut = useSignOut();

  // On a phone the menu covers the view: close it once a link has been followed.
  useEffect(() => {
    if (path) setMenuOpen(false);
  }, [path]);

  const admin = isAdmin(session);
  const ownUser = hasUser(session);
  return (
    <>
      <button type="button" className="skip-link secondary" onClick={skipToMain}>
        Skip to content
      </button>
      <header className="site-header">
        <div className="brand">AI Request Handler</div>
        <button
          type="button"
          className="menu-button"
          aria-expanded={menuOpen}
          aria-controls={navId}
          onClick={() => setMenuOpen((open) => !open)}
        >
          Menu
        </button>
        <nav id={navId} className={menuOpen ? "site-nav open" : "site-nav"} aria-label="Main">
          <ul>
            <li>
              <Link to="/" activeOptions={{ exact: true, includeSearch: false }}>
                Overview
              </Link>
            </li>
            <li>
              <Link to="/requests" activeOptions={{ exact: false, includeSearch: false }}>
                Requests
              </Link>
            </li>
            {ownUser && (
              <li>
                <Link to="/playground">Playground</Link>
              </li>
            )}
            {ownUser && (
              <li>
                <Link to="/keys">Keys</Link>
              </li>
            )}
            {admin && (
              <li>
                <Link to="/users">Users</Link>
              </li>
            )}
          </ul>
          <div className="identity">
            <span className="who" title={session.user?.email ?? undefined}>
              {session.user?.email ?? "Operator"}
            </span>
            {admin && <span className="badge">admin</span>}
            <button type="button" className="secondary" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
              Sign out
            </button>
          </div>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorNote error={signOut.error} prefix="Could not sign out" />
        <Outlet />
      </main>
    </>
  );
}

/** A button, not an "#main" link: the hash router owns the part after "#". */
function skipToMain() {
  document.getElementById("main")?.focus();
}

export function NotFound() {
  return (
    <Page title="Not found">
      <p>There is no such page in the dashboard.</p>
      <p>
        <Link to="/">Go to the overview</Link>
      </p>
    </Page>
  );
}
