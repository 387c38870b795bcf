/**
 * The few calls the benchmark makes outside the measured load: the admin API (a user and a key), priming the
 * cache, the service's /metrics and the mock's /__stats. Plain fetch: none of this is timed.
 */

export interface BenchUser {
  userId: string;
  key: string;
}

async function call(url: string, init: RequestInit & { expect: number }): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== init.expect) {
    throw new Error(`${init.method ?? "GET"} ${url}: expected ${init.expect}, got ${response.status}: ${text}`);
  }
  return text === "" ? undefined : JSON.parse(text);
}

const field = (value: unknown, name: string): string => {
  const found = (value as Record<string, unknown> | null)?.[name];
  if (typeof found !== "string") throw new Error(`the answer has no string "${name}": ${JSON.stringify(value)}`);
  return found;
};

/** A fresh user and one API key for it, through `POST /admin/users` and `POST /admin/users/{id}/keys`. */
export async function createBenchUser(serviceUrl: string, adminKey: string, runId: string): Promise<BenchUser> {
  const headers = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
  const user = await call(`${serviceUrl}/admin/users`, {
    method: "POST",
    headers,
    body: JSON.stringify({ email: `bench-${runId}@example.com`, name: "bench" }),
    expect: 201,
  });
  const userId = field(user, "id");
  const key = await call(`${serviceUrl}/admin/users/${userId}/keys`, {
    method: "POST",
    headers,
    body: JSON.stringify({ name: "bench" }),
    expect: 201,
  });
  return { userId, key: field(key, "key") };
}

/** Sends one request and returns its `x-cache` header; throws unless it is a 201. */
export async function sendOnce(serviceUrl: string, apiKey: string, body: string): Promise<string | null> {
  const response = await fetch(`${serviceUrl}/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST /requests: expected 201, got ${response.status}: ${text}`);
  return response.headers.get("x-cache");
}

/** `/v1` requests the mock has answered since it started (its `GET /__stats`). */
export async function mockRequestCount(mockOrigin: string): Promise<number> {
  const stats = await call(`${mockOrigin}/__stats`, { expect: 200 });
  const total = (stats as { totalRequests?: unknown }).totalRequests;
  if (typeof total !== "number") throw new Error(`mock /__stats has no totalRequests: ${JSON.stringify(stats)}`);
  return total;
}

/** The mock's requests in flight: the benchmark waits for 0 between runs so one run's stragglers stay in it. */
export async function mockInFlight(mockOrigin: string): Promise<number> {
  const stats = await call(`${mockOrigin}/__stats`, { expect: 200 });
  const inFlight = (stats as { inFlight?: unknown }).inFlight;
  return typeof inFlight === "number" ? inFlight : 0;
}

/** Sums and counts of the histograms the report splits the service's time with. */
export interface ServiceTimes {
  /** `arh_http_request_duration_seconds` of `POST /requests`: the service's own view of a request, in seconds. */
  httpSeconds: number;
  httpCount: number;
  /** `arh_upstream_duration_seconds`: time spent waiting for the upstream, in seconds. */
  upstreamSeconds: number;
  upstreamCount: number;
}

/** Reads `/metrics` (admin key) and picks the two histograms' `_sum` and `_count`. */
export async function serviceTimes(serviceUrl: string, adminKey: string): Promise<ServiceTimes> {
  const response = await fetch(`${serviceUrl}/metrics`, {
    headers: { authorization: `Bearer ${adminKey}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}: ${text}`);
  const times: ServiceTimes = { httpSeconds: 0, httpCount: 0, upstreamSeconds: 0, upstreamCount: 0 };
  for (const line of text.split("\n")) {
    const match = /^(\w+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match) continue;
    const [, name, labels = "", value] = match;
    const number = Number(value);
    if (name === "arh_http_request_duration_seconds_sum" && isPostRequests(labels)) times.httpSeconds += number;
    if (name === "arh_http_request_duration_seconds_count" && isPostRequests(labels)) times.httpCount += number;
    if (name === "arh_upstream_duration_seconds_sum") times.upstreamSeconds += number;
    if (name === "arh_upstream_duration_seconds_count") times.upstreamCount += number;
  }
  return times;
}

const isPostRequests = (labels: string) => labels.includes('route="/requests"') && labels.includes('method="POST"');
