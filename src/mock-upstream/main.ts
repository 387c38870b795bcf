/**
 * The mock upstream as a process of its own, for benchmarks and manual runs:
 *   npx tsx src/mock-upstream/main.ts --port 9999 --latency-ms 20
 * (or `npm run mock-upstream -- …` through the CLI). Prints one line with its URL; closes on SIGTERM/SIGINT.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type MockUpstream, type MockUpstreamOptions, startMockUpstream } from "./server.ts";

export const mockUpstreamUsage = `usage: mock-upstream [options]
  --port <n>                   listen port (env MOCK_UPSTREAM_PORT, default 8081; 0 = any free port)
  --host <addr>                listen address (default 127.0.0.1)
  --latency-ms <n>             delay before each answer (default 0)
  --stream-chunk-delay-ms <n>  delay between stream chunks (default 0)
  --error-rate <0..1>          share of requests answered 500 (default 0)
  --rate-limit-rate <0..1>     share of requests answered 429 (default 0)
  --overloaded-rate <0..1>     share of requests answered 529, Anthropic's overloaded_error (default 0)
  --retry-after-seconds <n>    Retry-After of those 429s (default 1)
  --bytes-per-token <n>        count chat prompt tokens as UTF-8 bytes / n, like a non-OpenAI tokenizer
                               (default: OpenAI's o200k tokenizer)
  --api-key <key>              accept only this key, as a bearer token or Anthropic's x-api-key (default: any)`;

function number(name: string, value: string | undefined, min: number, max = Number.POSITIVE_INFINITY) {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isFinite(parsed) || parsed < min || parsed > max) {
    throw new Error(`invalid --${name}=${JSON.stringify(value)}: expected a number from ${min} to ${max}`);
  }
  return parsed;
}

/** Parses the command line (and MOCK_UPSTREAM_PORT) into server options; throws one clear line on bad input. */
export function parseMockUpstreamArgs(
  argv: string[],
  env: Record<string, string | undefined> = {},
): MockUpstreamOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "latency-ms": { type: "string" },
      "stream-chunk-delay-ms": { type: "string" },
      "error-rate": { type: "string" },
      "rate-limit-rate": { type: "string" },
      "overloaded-rate": { type: "string" },
      "retry-after-seconds": { type: "string" },
      "bytes-per-token": { type: "string" },
      "api-key": { type: "string" },
    },
  });
  const port = number("port", values.port ?? (env.MOCK_UPSTREAM_PORT || undefined) ?? "8081", 0, 65535);
  if (port !== undefined && !Number.isInteger(port)) throw new Error(`invalid --port=${values.port}: not an integer`);
  const options: MockUpstreamOptions = { port, host: values.host ?? "127.0.0.1" };
  const knobs = {
    latencyMs: number("latency-ms", values["latency-ms"], 0),
    streamChunkDelayMs: number("stream-chunk-delay-ms", values["stream-chunk-delay-ms"], 0),
    errorRate: number("error-rate", values["error-rate"], 0, 1),
    rateLimitRate: number("rate-limit-rate", values["rate-limit-rate"], 0, 1),
    overloadedRate: number("overloaded-rate", values["overloaded-rate"], 0, 1),
    retryAfterSeconds: number("retry-after-seconds", values["retry-after-seconds"], 0),
    bytesPerToken: number("bytes-per-token", values["bytes-per-token"], 0.001),
  };
  for (const [key, value] of Object.entries(knobs)) {
    if (value !== undefined) Object.assign(options, { [key]: value });
  }
  if (values["api-key"] !== undefined) options.apiKey = values["api-key"];
  return options;
}

/**
 * Starts the server from command-line arguments, prints its URL, and closes it on SIGTERM or SIGINT (the process
 * then exits by itself, with nothing left to run). Resolves once listening; with `--help`, prints the usage and
 * resolves undefined without starting anything.
 */
export async function runMockUpstreamFromArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): Promise<MockUpstream | undefined> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(mockUpstreamUsage);
    return undefined;
  }
  const upstream = await startMockUpstream(parseMockUpstreamArgs(argv, env));
  console.log(`mock upstream listening on ${upstream.url}`);
  const stop = () => {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
    upstream.close().catch((error: unknown) => {
      console.error(`mock upstream: close failed: ${(error as Error).message}`);
      process.exitCode = 1;
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  return upstream;
}

/** True when this file is the one node (or tsx) was asked to run, rather than an import. */
function isEntryModule(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryModule()) {
  runMockUpstreamFromArgs(process.argv.slice(2), process.env).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(mockUpstreamUsage);
    process.exit(2);
  });
}
