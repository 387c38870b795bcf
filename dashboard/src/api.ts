// One way to call the service: same-origin fetch with the session cookie, JSON in and out, and problem documents
// (RFC 9457) turned into errors that carry their detail. A 401 anywhere means the session is gone.

/** An error answer from the service: the problem document's detail as the message. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;

  constructor(status: number, message: string, problem: Problem | null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: { path: string; message: string }[];
}

let unauthorized: () => void = () => {};

/** What to do when the service answers 401 (the session ended, expired or was never there): sign out here too. */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

/** Tell the app the session is gone, as a 401 from any call does. */
export function signalUnauthorized(): void {
  unauthorized();
}

export interface CallOptions {
  method?: "GET" | "POST" | "PATCH" | "DELETE";
  body?: unknown;
  signal?: AbortSignal;
  /** Handle a 401 at the call site instead of signing out (signing in with a bad key, checking the session). */
  expectUnauthorized?: boolean;
}

export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  const response = await send(path, options);
  // 204, or any success without a body (a DELETE answered 200): nothing to read.
  const text = await response.text();
  return (text === "" ? undefined : JSON.parse(text)) as T;
}

/** The raw answer of a successful call, for bodies that are not JSON (a stream of server-sent events). */
export async function send(path: string, options: CallOptions & { accept?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: options.accept ?? "application/json" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method: options.method ?? "GET",
    credentials: "same-origin",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (response.ok) return response;
  const error = await errorOf(response);
  if (response.status === 401 && !options.expectUnauthorized) unauthorized();
  throw error;
}

export async function errorOf(response: Response): Promise<ApiError> {
  const problem = await response.json().then(
    (body: unknown) => (typeof body === "object" && body !== null ? (body as Problem) : null),
    () => null,
  );
  return new ApiError(response.status, messageOf(problem, response), problem);
}

/** The problem's detail names the field at fault; its title is the fallback, then the bare status. */
export function messageOf(problem: Problem | null, response?: Response): string {
  if (problem?.detail) return problem.detail;
  if (problem?.title) return problem.title;
  return response ? `${response.status} ${response.statusText || "error"}`.trim() : "Something went wrong";
}

/** A query string from the values that are set; empty strings and nulls are left out. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));
