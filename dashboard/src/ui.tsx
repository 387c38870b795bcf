// Small pieces every view uses: loading and error notes, the page title, and the "not for you" states.
import { type ReactNode, useEffect } from "react";
import { errorMessage } from "./api.ts";

export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · AI Request Handler`;
  }, [title]);
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** An error in words: the problem document's detail when the service sent one. */
export function ErrorNote({ error, prefix }: { error: unknown; prefix?: string }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {prefix ? `${prefix}: ` : ""}
      {errorMessage(error)}
    </p>
  );
}

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  useDocumentTitle(title);
  return (
    <>
      <div className="page-head">
        <h1>{title}</h1>
        {actions}
      </div>
      {children}
    </>
  );
}

export function NotAllowed({ title, why }: { title: string; why: string }) {
  return (
    <Page title={title}>
      <div className="panel notice" role="alert">
        <h2>Not allowed</h2>
        <p>{why}</p>
      </div>
    </Page>
  );
}

/** Views that need a user of one's own, shown to the operator's ADMIN_API_KEY. */
export function NoUserOfYourOwn({ title }: { title: string }) {
  return (
    <NotAllowed
      title={title}
      why="The operator key (ADMIN_API_KEY) has no user of its own. Sign in with a user's API key to use this page."
    />
  );
}
