// Sign-in: the API key is exchanged for a session cookie and forgotten at once. It is read from the field when the
// form is sent and the field is emptied, so it stays in no state, storage or history.
import { useNavigate } from "@tanstack/react-router";
import { type FormEvent, useId, useRef } from "react";
import { useSignIn } from "../session.tsx";
import { ErrorNote, useDocumentTitle } from "../ui.tsx";

export function SignInView({ checkError }: { checkError: unknown }) {
  useDocumentTitle("Sign in");
  const navigate = useNavigate();
  const keyField = useRef<HTMLInputElement>(null);
  const fieldId = useId();
  const hintId = useId();
  const signIn = useSignIn(() => void navigate({ to: "/", search: {} }));

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const field = keyField.current;
    const key = field?.value.trim() ?? "";
    if (field) field.value = "";
    if (key) signIn.mutate(key);
    else field?.focus();
  }

  return (
    <main id="main" className="sign-in">
      <form className="panel sign-in-form" onSubmit={submit}>
        <h1>AI Request Handler</h1>
        <p className="muted">Sign in to see your requests, usage and keys.</p>
        <div className="field">
          <label htmlFor={fieldId}>API key</label>
          <input
            ref={keyField}
            id={fieldId}
            name="api_key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            placeholder="arh_…"
            aria-describedby={hintId}
            required
          />
          <p id={hintId} className="hint">
            Your key is only used to start a session; the browser does not keep it.
          </p>
        </div>
        <button type="submit" disabled={signIn.isPending}>
          {signIn.isPending ? "Signing in…" : "Sign in"}
        </button>
        <ErrorNote error={signIn.error} prefix="Could not sign in" />
        {!signIn.error && <ErrorNote error={checkError} prefix="Could not check the session" />}
      </form>
    </main>
  );
}
