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

/**
 * Limits on the benchmark's user and key, far above anything a run reaches, so that every request goes through the
 * whole limits path (rpm of user and key, tpm reserve and settle, the monthly budget) and none is refused. A user
 * without limits would skip all of it (limits/limiter.ts returns early) and measure a cheaper service than a real
 * deployment with limits runs.
 */
const benchLimits = {
  user: { rpm: 100_000_000, tpm: 2_000_000_000, monthly_budget_usd: 1_000_000 },
  key: { rpm: 100_000_000, tpm: 2_000_000_000 },
};

/** A fresh user and one API key for it, through `POST /admin/users` and `POST /admin/users/{id}/keys`. */
export async function createBenchUser(
  serviceUrl: string,
  adminKey: string,
  runId: string,
  withLimits = true,
): Promise<BenchUser> {
  const headers = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
  const user = await call(`${serviceUrl}/admin/users`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      email: `bench-${runId}@example.com`,
      name: "bench",
      ...(withLimits && { limits: benchLimits.user }),
    }),
    expect: 201,
  });
  const userId = field(user, "id");
  const key = await call(`${serviceUrl}/admin/users/${userId}/keys`, {
    method: "POST",
    headers,
    body: JSON.stringify({ name: "bench", ...(withLimits && { limits: benchLimits.key }) }),
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
  /** `arh_http_request_duration_seconds` of `POST <route>`: the service's own view of a request, in seconds. */
  httpSeconds: number;
  httpCount: number;
  /** `arh_upstream_duration_seconds`: time spent waiting for the upstream, in seconds. */
  upstreamSeconds: number;
  upstreamCount: number;
  /**
   * Where the RSS is, as the service sees it when the run ends (prom-client's process metrics), MB: the V8 heap
   * (used and reserved) and memory outside it (Buffers, WebAssembly such as PGlite's). The rest of the RSS is code,
   * native allocations and stacks.
   */
  heapUsedMb: number | null;
  heapTotalMb: number | null;
  externalMb: number | null;
}

/**
 * Reads `/metrics` (admin key) and picks the two histograms' `_sum` and `_count`, the first for `POST <route>`, and
 * the process's heap sizes.
 */
export async function serviceTimes(serviceUrl: string, adminKey: string, route: string): Promise<ServiceTimes> {
  const response = await fetch(`${serviceUrl}/metrics`, {
    headers: { authorization: `Bearer ${adminKey}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET /metrics: ${response.status}: ${text}`);
  const times: ServiceTimes = {
    httpSeconds: 0,
    httpCount: 0,
    upstreamSeconds: 0,
    upstreamCount: 0,
    heapUsedMb: null,
    heapTotalMb: null,
    externalMb: null,
  };
  const mb = (bytes: number) => Math.round(bytes / 104_857.6) / 10;
  for (const line of text.split("\n")) {
    const match = /^(\w+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match) continue;
    const [, name, labels = "", value] = match;
    const number = Number(value);
    if (name === "arh_http_request_duration_seconds_sum" && isPost(labels, route)) times.httpSeconds += number;
    if (name === "arh_http_request_duration_seconds_count" && isPost(labels, route)) times.httpCount += number;
    if (name === "arh_upstream_duration_seconds_sum") times.upstreamSeconds += number;
    if (name === "arh_upstream_duration_seconds_count") times.upstreamCount += number;
    if (name === "arh_process_nodejs_heap_size_used_bytes") times.heapUsedMb = mb(number);
    if (name === "arh_process_nodejs_heap_size_total_bytes") times.heapTotalMb = mb(number);
    if (name === "arh_process_nodejs_external_memory_bytes") times.externalMb = mb(number);
  }
  return times;
}

const isPost = (labels: string, route: string) =>
  labels.includes(`route="${route}"`) && labels.includes('method="POST"');
