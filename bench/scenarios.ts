/**
 * The three scenarios and one measured run of one of them with autocannon (in this process).
 *
 * Latency is taken from autocannon's per-response event (hrtime, fractions of a millisecond), not from its result:
 * its histogram keeps whole milliseconds, too coarse for a mock that answers in well under one.
 */
import autocannon from "autocannon";
import { summarizeRequestSchema } from "../src/requests/schemas.ts";
import { taskTypes } from "../src/requests/task-types.ts";
import { mockInFlight, mockRequestCount, serviceTimes } from "./api.ts";
import { cpuBetween, cpuSnapshot } from "./cpu.ts";

export const scenarioNames = ["direct", "miss", "hit"] as const;
export type ScenarioName = (typeof scenarioNames)[number];

export interface Scenario {
  name: ScenarioName;
  url: string;
  headers: Record<string, string>;
  /** The body of the next request (called once per request). */
  nextBody(): string;
  /** A problem with one answer beyond its status (e.g. `x-cache` not `hit`), or undefined when it is as expected. */
  check(status: number, headers: Record<string, string | string[] | undefined>): string | undefined;
  /** Run before each measured or warm-up run, outside the timing (the hit scenario primes its cache entry). */
  prepare?(): Promise<void>;
  /** Upstream (mock) calls each answer should cost: 1 for direct and miss, 0 for hit. */
  upstreamCallsPerAnswer: 0 | 1;
}

export interface ScenarioTargets {
  runId: string;
  mockOrigin: string;
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

export function createScenarios(targets: ScenarioTargets): Record<ScenarioName, Scenario> {
  // One counter for the whole run: no two requests of any round, warm-up or scenario share an input.
  let counter = 0;
  const uniqueInput = () => `Request ${targets.runId}-${++counter}. ${paragraph}`;

  const nativeBody = template((input) => ({ type: "summarize", input }));
  // The very chat completion the service sends upstream for that summarize request (its own prompt builder), so the
  // mock does the same work in `direct` as behind `miss`. Unique inputs for the same reason: the mock caches its
  // generations by prompt, and a fixed baseline prompt would make the baseline cheaper than the calls under test.
  const upstreamBody = template((input) =>
    taskTypes.summarize.build(summarizeRequestSchema.parse({ type: "summarize", input }), benchModel),
  );
  const hitBody = nativeBody(`Request ${targets.runId}-fixed. ${paragraph}`);
  const userHeaders = { authorization: `Bearer ${targets.apiKey}`, "content-type": "application/json" };

  const expectCache =
    (expected: string) => (status: number, headers: Record<string, string | string[] | undefined>) => {
      if (status < 200 || status > 299) return undefined; // counted as non-2xx already
      const cache = header(headers, "x-cache");
      return cache === expected ? undefined : `x-cache: ${cache ?? "(none)"}, expected ${expected}`;
    };

  return {
    direct: {
      name: "direct",
      url: `${targets.mockOrigin}/v1/chat/completions`,
      headers: { authorization: "Bearer sk-bench", "content-type": "application/json" },
      nextBody: () => upstreamBody(uniqueInput()),
      check: () => undefined,
      upstreamCallsPerAnswer: 1,
    },
    miss: {
      name: "miss",
      url: `${targets.serviceUrl}/requests`,
      headers: userHeaders,
      nextBody: () => nativeBody(uniqueInput()),
      check: expectCache("miss"),
      upstreamCallsPerAnswer: 1,
    },
    hit: {
      name: "hit",
      url: `${targets.serviceUrl}/requests`,
      headers: userHeaders,
      nextBody: () => hitBody,
      check: expectCache("hit"),
      // Before every run, not once: the memory cache is an LRU of CACHE_MAX_ENTRIES, and a miss round in between
      // can push the entry out.
      async prepare() {
        const first = await targets.sendOnce(hitBody);
        const second = await targets.sendOnce(hitBody);
        if (second !== "hit") throw new Error(`priming the hit scenario: x-cache ${first}, then ${second} (not hit)`);
      },
      upstreamCallsPerAnswer: 0,
    },
  };
}

/** One run of one scenario at one concurrency, with everything the report needs about it. */
export interface RunResult {
  scenario: ScenarioName;
  connections: number;
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
  /** The service's own view (its /metrics), mean per request in ms; null for the direct scenario. */
  serviceMeanMs: number | null;
  upstreamMeanMs: number | null;
}

export interface MeasureContext {
  targets: ScenarioTargets;
  adminKey: string;
  /** Processes to account CPU to, by name. */
  pids: Record<string, number>;
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
  const usesService = scenario.name !== "direct";
  const mockBefore = await mockRequestCount(context.targets.mockOrigin);
  const timesBefore = usesService ? await serviceTimes(context.targets.serviceUrl, context.adminKey) : undefined;

  const latencies: number[] = [];
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
        requests: [
          {
            method: "POST",
            setupRequest: (request) => {
              request.body = scenario.nextBody();
              return request;
            },
            onResponse: (status, _body, _context, headers) => {
              const problem = scenario.check(status, headers ?? {});
              if (problem) {
                unexpected++;
                if (unexpectedExamples.length < 5) unexpectedExamples.push(problem);
              }
            },
          },
        ],
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

  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuBetween(cpuBefore, cpuSnapshot(context.pids));
  await settle(context.targets.mockOrigin);
  const mockAfter = await mockRequestCount(context.targets.mockOrigin);
  const timesAfter = usesService ? await serviceTimes(context.targets.serviceUrl, context.adminKey) : undefined;

  const sorted = Float64Array.from(latencies).sort();
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, (stats as { count: number }).count]),
  );
  const meanMs = (seconds: number, count: number) => (count > 0 ? round((seconds * 1000) / count) : null);
  const answers = latencies.length;
  return {
    scenario: scenario.name,
    connections,
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
    upstreamCallsExpected: answers * scenario.upstreamCallsPerAnswer,
    cpu,
    serviceMeanMs:
      timesBefore && timesAfter
        ? meanMs(timesAfter.httpSeconds - timesBefore.httpSeconds, timesAfter.httpCount - timesBefore.httpCount)
        : null,
    upstreamMeanMs:
      timesBefore && timesAfter && scenario.upstreamCallsPerAnswer > 0
        ? meanMs(
            timesAfter.upstreamSeconds - timesBefore.upstreamSeconds,
            timesAfter.upstreamCount - timesBefore.upstreamCount,
          )
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
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

const round = (value: number) => Math.round(value * 100) / 100;
