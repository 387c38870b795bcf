/**
 * The scenarios and one measured run of one of them with autocannon (in this process).
 *
 * Latency is taken from autocannon's per-response event (hrtime, fractions of a millisecond), not from its result:
 * its histogram keeps whole milliseconds, too coarse for a mock that answers in well under one.
 */
import autocannon from "autocannon";
import { summarizeRequestSchema } from "../src/requests/schemas.ts";
import { taskTypes } from "../src/requests/task-types.ts";
import { mockInFlight, mockRequestCount, serviceTimes } from "./api.ts";
import { cpuBetween, cpuSnapshot } from "./cpu.ts";
import type { RssSampler } from "./memory.ts";

/** The scenarios `--scenarios` can name, in the order the table shows them. */
export const scenarioNames = ["proxy", "direct", "miss", "hit", "v1", "v1-stream"] as const;
/** `soak` is the miss + hit mix of `--soak`, never a row of the table. */
export type ScenarioName = (typeof scenarioNames)[number] | "soak";

/** Answers of one shape, with what to expect of each. Most scenarios send one kind; the soak's mix sends two. */
export interface RequestKind {
  /** The body of the next request (called once per request). */
  nextBody(): string;
  /** A problem with one answer beyond its status (e.g. `x-cache` not `hit`), or undefined when it is as expected. */
  check(status: number, headers: Record<string, string | string[] | undefined>): string | undefined;
  /** Upstream (mock) calls each answer should cost: 1 for a call that reaches the mock, 0 for a cache hit. */
  upstreamCallsPerAnswer: 0 | 1;
}

export interface Scenario {
  name: ScenarioName;
  url: string;
  /** Who answers: the mock itself, the bare proxy in front of it, or the service. */
  target: "mock" | "proxy" | "service";
  /** The service route whose `arh_http_request_duration_seconds` is the `svc ms` column. */
  metricsRoute?: string;
  headers: Record<string, string>;
  /** Sent in turn on every connection (autocannon's request list). */
  kinds: RequestKind[];
  /** Run before each measured or warm-up run, outside the timing (the hit scenario primes its cache entry). */
  prepare?(): Promise<void>;
}

export interface ScenarioTargets {
  runId: string;
  mockOrigin: string;
  proxyOrigin: string;
  serviceUrl: string;
  apiKey: string;
  /** Sends one request through the service and returns its `x-cache` (to prime the hit scenario). */
  sendOnce(body: string): Promise<string | null>;
}

/** The model the service uses for summarize when none is named; passed to it as DEFAULT_CHAT_MODEL. */
export const benchModel = "gpt-4o-mini";

/** A paragraph of ordinary prose, so the prompt is a realistic size (about 60 tokens) rather than a few words. */
const paragraph =
  "PostgreSQL is a powerful, open source object-relational database system with over thirty-five years of " +
  "active development that has earned it a strong reputation for reliability, feature robustness, and performance.";

const header = (headers: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const value = headers[name] ?? Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Bodies built from a fixed prefix and suffix around a JSON string, so every scenario spends the same (tiny) effort in
 * the load generator per request, whether its body is unique or not.
 */
function template(build: (input: string) => unknown): (input: string) => string {
  const marker = "\u0000bench-input\u0000";
  const whole = JSON.stringify(build(marker));
  const encodedMarker = JSON.stringify(marker);
  const at = whole.indexOf(encodedMarker);
  if (at < 0 || whole.indexOf(encodedMarker, at + 1) >= 0)
    throw new Error("the body template must hold the input once");
  const prefix = whole.slice(0, at);
  const suffix = whole.slice(at + encodedMarker.length);
  return (input) => prefix + JSON.stringify(input) + suffix;
}

/**
 * The chat completion the service sends upstream for a summarize request (its own prompt builder). The direct and
 * proxy baselines send exactly this, and so do `v1` and `v1-stream` (the service passes /v1 bodies through), so the
 * mock does the same work behind every scenario. Unique inputs everywhere for the same reason: the mock caches its
 * generations by prompt, and a fixed prompt would make a baseline cheaper than the calls under test.
 */
const upstreamChat = (input: string) =>
  taskTypes.summarize.build(summarizeRequestSchema.parse({ type: "summarize", input }), benchModel);

/** Bodies of the streaming calls, shared with the time-to-first-byte probe (probes.ts). */
export const streamBodies = {
  /** What a client sends to the service's `/v1/chat/completions` with `stream: true`. */
  service: template((input) => ({ ...upstreamChat(input), stream: true })),
  /** What the service then sends upstream: it always asks for usage (providers/openai.ts). */
  upstream: template((input) => ({ ...upstreamChat(input), stream: true, stream_options: { include_usage: true } })),
};

const expectCache =
  (expected: string) =>
  (status: number, headers: Record<string, string | string[] | undefined>): string | undefined => {
    if (status < 200 || status > 299) return undefined; // counted as non-2xx already
    const cache = header(headers, "x-cache");
    return cache === expected ? undefined : `x-cache: ${cache ?? "(none)"}, expected ${expected}`;
  };

/** One counter for the whole run: no two requests of any round, warm-up, probe or scenario share an input. */
export function createInputs(runId: string): () => string {
  let counter = 0;
  return () => `Request ${runId}-${++counter}. ${paragraph}`;
}

export function createScenarios(targets: ScenarioTargets, uniqueInput: () => string): Record<ScenarioName, Scenario> {
  const nativeBody = template((input) => ({ type: "summarize", input }));
  const upstreamBody = template(upstreamChat);
  const hitBody = nativeBody(`Request ${targets.runId}-fixed. ${paragraph}`);
  const userHeaders = { authorization: `Bearer ${targets.apiKey}`, "content-type": "application/json" };
  const mockHeaders = { authorization: "Bearer sk-bench", "content-type": "application/json" };

  const upstreamCall: RequestKind = {
    nextBody: () => upstreamBody(uniqueInput()),
    check: () => undefined,
    upstreamCallsPerAnswer: 1,
  };
  const miss: RequestKind = {
    nextBody: () => nativeBody(uniqueInput()),
    check: expectCache("miss"),
    upstreamCallsPerAnswer: 1,
  };
  const hit: RequestKind = { nextBody: () => hitBody, check: expectCache("hit"), upstreamCallsPerAnswer: 0 };
  // Before every run, not once: the memory cache is an LRU of CACHE_MAX_ENTRIES, and a miss round in between
  // can push the entry out.
  const primeHit = async () => {
    const first = await targets.sendOnce(hitBody);
    const second = await targets.sendOnce(hitBody);
    if (second !== "hit") throw new Error(`priming the hit scenario: x-cache ${first}, then ${second} (not hit)`);
  };
  const service = (path: string) => ({
    url: `${targets.serviceUrl}${path}`,
    target: "service" as const,
    metricsRoute: path,
    headers: userHeaders,
  });

  return {
    proxy: {
      name: "proxy",
      url: `${targets.proxyOrigin}/v1/chat/completions`,
      target: "proxy",
      headers: mockHeaders,
      kinds: [upstreamCall],
    },
    direct: {
      name: "direct",
      url: `${targets.mockOrigin}/v1/chat/completions`,
      target: "mock",
      headers: mockHeaders,
      kinds: [upstreamCall],
    },
    miss: { name: "miss", ...service("/requests"), kinds: [miss] },
    hit: { name: "hit", ...service("/requests"), kinds: [hit], prepare: primeHit },
    v1: {
      name: "v1",
      ...service("/v1/chat/completions"),
      kinds: [{ nextBody: () => upstreamBody(uniqueInput()), check: expectCache("miss"), upstreamCallsPerAnswer: 1 }],
    },
    "v1-stream": {
      name: "v1-stream",
      ...service("/v1/chat/completions"),
      kinds: [
        {
          nextBody: () => streamBodies.service(uniqueInput()),
          check: expectCache("miss"),
          upstreamCallsPerAnswer: 1,
        },
      ],
    },
    // Half misses, half hits, on every connection: the soak's steady mix of new records, cache fills and reads.
    soak: { name: "soak", ...service("/requests"), kinds: [miss, hit], prepare: primeHit },
  };
}

/** One run of one scenario at one concurrency, with everything the report needs about it. */
export interface RunResult {
  scenario: ScenarioName;
  connections: number;
  /** The measured round it belongs to (1, 2, …); 0 for warm-ups and the soak. */
  round: number;
  /** Wall time of the load, seconds. */
  seconds: number;
  /** Answers received, any status. */
  answers: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  /** Connection errors and timeouts (autocannon's `errors`, which include `timeouts`). */
  errors: number;
  timeouts: number;
  /** 2xx answers that were still wrong (e.g. a miss in the hit scenario), and up to five examples. */
  unexpected: number;
  unexpectedExamples: string[];
  /** `/v1` requests the mock received during the run, and what the scenario should have caused. */
  upstreamCalls: number;
  upstreamCallsExpected: number;
  /** Share of one core each process used during the run (1 = a core busy all the time). */
  cpu: Record<string, number | null>;
  /** The service's own view (its /metrics), mean per request in ms; null where the service does not answer. */
  serviceMeanMs: number | null;
  upstreamMeanMs: number | null;
  /** The service's highest resident memory sampled during the run (all its processes), MB; null without /proc. */
  rssPeakMb: number | null;
  /** The service's V8 heap (used, reserved) and memory outside it when the run ended, MB (its /metrics). */
  heap: { usedMb: number | null; totalMb: number | null; externalMb: number | null } | null;
}

export interface MeasureContext {
  targets: ScenarioTargets;
  adminKey: string;
  /** Process groups to account CPU to, by name (each child leads its own group). */
  pids: Record<string, number>;
  /**
   * Whether the service's /metrics describe all of it. Not with --workers: each worker counts only what it answered,
   * and /metrics comes from whichever worker takes the connection.
   */
  serviceMetrics: boolean;
  /** The service's memory, sampled all along; the run records its peak. */
  rss: RssSampler;
}

let current: autocannon.Instance | undefined;

/** Stops the load that is running, if any (Ctrl-C). */
export function stopCurrentLoad(): void {
  current?.stop();
}

export async function measure(
  scenario: Scenario,
  connections: number,
  durationSeconds: number,
  context: MeasureContext,
): Promise<RunResult> {
  await scenario.prepare?.();
  const metricsRoute = context.serviceMetrics ? scenario.metricsRoute : undefined;
  const times = () =>
    metricsRoute ? serviceTimes(context.targets.serviceUrl, context.adminKey, metricsRoute) : undefined;
  const mockBefore = await mockRequestCount(context.targets.mockOrigin);
  const timesBefore = await times();

  const latencies: number[] = [];
  const answersByKind = scenario.kinds.map(() => 0);
  let unexpected = 0;
  const unexpectedExamples: string[] = [];
  const cpuBefore = cpuSnapshot(context.pids);
  const started = performance.now();

  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: scenario.url,
        method: "POST",
        connections,
        duration: durationSeconds,
        headers: scenario.headers,
        requests: scenario.kinds.map((kind, index) => ({
          method: "POST" as const,
          setupRequest: (request: autocannon.Request) => {
            request.body = kind.nextBody();
            return request;
          },
          onResponse: (status: number, _body: string, _context: object, headers: autocannon.Request["headers"]) => {
            answersByKind[index] = (answersByKind[index] ?? 0) + 1;
            const problem = kind.check(status, headers ?? {});
            if (problem) {
              unexpected++;
              if (unexpectedExamples.length < 5) unexpectedExamples.push(problem);
            }
          },
        })),
      },
      (error: unknown, done: autocannon.Result) => (error ? reject(error) : resolve(done)),
    );
    current = instance;
    instance.on("response", (_client, _status, _bytes, responseTimeMs) => {
      latencies.push(responseTimeMs);
    });
  }).finally(() => {
    current = undefined;
  });

  const ended = performance.now();
  const seconds = (ended - started) / 1000;
  const cpu = cpuBetween(cpuBefore, cpuSnapshot(context.pids));
  await settle(context.targets.mockOrigin);
  const mockAfter = await mockRequestCount(context.targets.mockOrigin);
  const timesAfter = await times();

  const sorted = Float64Array.from(latencies).sort();
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, (stats as { count: number }).count]),
  );
  const meanMs = (seconds: number, count: number) => (count > 0 ? round((seconds * 1000) / count) : null);
  const answers = latencies.length;
  const callsExpected = scenario.kinds.reduce(
    (total, kind, index) => total + (answersByKind[index] ?? 0) * kind.upstreamCallsPerAnswer,
    0,
  );
  return {
    scenario: scenario.name,
    connections,
    round: 0,
    seconds: round(seconds),
    answers,
    requestsPerSecond: round(answers / seconds),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    non2xx: result.non2xx,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    unexpected,
    unexpectedExamples,
    upstreamCalls: mockAfter - mockBefore,
    upstreamCallsExpected: callsExpected,
    cpu,
    serviceMeanMs:
      timesBefore && timesAfter
        ? meanMs(timesAfter.httpSeconds - timesBefore.httpSeconds, timesAfter.httpCount - timesBefore.httpCount)
        : null,
    upstreamMeanMs:
      timesBefore && timesAfter && callsExpected > 0
        ? meanMs(
            timesAfter.upstreamSeconds - timesBefore.upstreamSeconds,
            timesAfter.upstreamCount - timesBefore.upstreamCount,
          )
        : null,
    rssPeakMb: context.rss.peakBetween(started, ended),
    heap: timesAfter
      ? { usedMb: timesAfter.heapUsedMb, totalMb: timesAfter.heapTotalMb, externalMb: timesAfter.externalMb }
      : null,
  };
}

/** Waits (up to 5 s) for requests still in flight when the load stopped, so they do not leak into the next run. */
async function settle(mockOrigin: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (await mockInFlight(mockOrigin)) > 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}

/** Nearest-rank percentile of sorted values; 0 when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

export const round = (value: number) => Math.round(value * 100) / 100;
