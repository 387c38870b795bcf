// The signed-in state: GET /auth/session decides it on load, sign-in and sign-out change it, and a 401 from any
// call ends it. The session lives in an httpOnly cookie; the browser never keeps the API key.
import { type QueryClient, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useContext } from "react";
import { ApiError, api } from "./api.ts";
import type { Session } from "./api-types.ts";

export const sessionKey = ["session"] as const;

async function fetchSession(): Promise<Session | null> {
  try {
    return await api<Session>("/auth/session", { expectUnauthorized: true });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

/** null: signed out. */
export function useSessionQuery() {
  return useQuery({ queryKey: sessionKey, queryFn: fetchSession, staleTime: Number.POSITIVE_INFINITY, retry: false });
}

/** Forget everything the last session loaded, so the next one never sees another user's data. */
export function signedOut(client: QueryClient): void {
  client.removeQueries({ predicate: (query) => query.queryKey[0] !== sessionKey[0] });
  client.setQueryData(sessionKey, null);
}

export function useSignIn(onSignedIn: () => void) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (apiKey: string) =>
      api<Session>("/auth/session", { method: "POST", body: { api_key: apiKey }, expectUnauthorized: true }),
    onSuccess: (session) => {
      signedOut(client);
      client.setQueryData(sessionKey, session);
      onSignedIn();
    },
  });
}

export function useSignOut() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      try {
        await api<void>("/auth/session", { method: "DELETE", expectUnauthorized: true });
      } catch (error) {
        // Already gone on the server: signing out here too is all that is left to do.
        if (!(error instanceof ApiError && error.status === 401)) throw error;
      }
    },
    onSuccess: () => signedOut(client),
  });
}

const SessionContext = createContext<Session | null>(null);
export const SessionProvider = SessionContext.Provider;

/** The live session, inside the signed-in part of the app. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in view");
  return session;
}

export const isAdmin = (session: Session): boolean => session.role === "admin";

/** The operator's ADMIN_API_KEY has no user: no Playground, no keys, no "me" data. */
export const hasUser = (session: Session): boolean => session.user !== null;

/**
 * Part of every query key that holds one caller's data: an admin's everyone-view and a user's own view of the same
 * path must never share a cache entry.
 */
export const scopeOf = (session: Session): string => `${session.role}:${session.user?.id ?? "operator"}`;
