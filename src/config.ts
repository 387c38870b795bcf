import { z } from "zod";
import { type FileProvider, loadProvidersFile } from "./providers/providers-file.ts";

/** The only place that reads the environment. Every default is stated here and in README's table. */
const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  );

const emptyAsUndefined = (value: unknown) => (value === "" ? undefined : value);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(emptyAsUndefined, schema.optional());
const int = (min: number) => z.coerce.number().int().min(min);

/** `*`, or a comma-separated list of origins (`https://app.example.com`); unset: no CORS at all. */
const corsOrigins = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((origin) => origin.trim().replace(/\/$/, ""))
      .filter(Boolean),
  )
  .refine((origins) => origins.every((origin) => origin === "*" || isOrigin(origin)), {
    message: "must be * or a comma-separated list of origins such as https://app.example.com",
  });

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === value;
  } catch {
    return false;
  }
}

/** `host:port` (or `redis://[user:password@]host:port`) entries, comma-separated: a Redis Cluster's seed nodes. */
const clusterNodes = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((node) => node.trim())
      .filter(Boolean),
  )
  .refine((nodes) => nodes.length > 0 && nodes.every(isClusterNode), {
    message: "must be a comma-separated list of host:port (or redis://host:port) entries",
  });

function isClusterNode(value: string): boolean {
  try {
    const url = new URL(value.includes("://") ? value : `redis://${value}`);
    return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "" && url.port !== "";
  } catch {
    return false;
  }
}

/** Which proxies' X-Forwarded-For to believe: false (none), true (any), a hop count, or addresses/CIDRs. */
const trustProxy = z.string().transform((value, context): boolean | number | string[] => {
  const text = value.trim().toLowerCase();
  if (text === "false") return false;
  if (text === "true") return true;
  if (/^\d+$/.test(text)) return Number(text);
  const entries = text.split(",").map((entry) => entry.trim());
  if (entries.some((entry) => !/^[0-9a-f.:]+(\/\d{1,3})?$/.test(entry))) {
    context.addIssue({ code: "custom", message: "must be true, false, a hop count, or addresses/CIDRs" });
    return z.NEVER;
  }
  return entries;
});

const flag = z.enum(["true", "false"]).transform((value) => value === "true");

/** 32 bytes, base64: the key that seals webhook signing secrets at rest. */
const secretKey = z.string().transform((value, context) => {
  const key = Buffer.from(value.trim(), "base64");
  if (key.length !== 32) {
    context.addIssue({ code: "custom", message: "must be 32 bytes in base64 (openssl rand -base64 32)" });
    return z.NEVER;
  }
  return key;
});

export const configSchema = z.object({
  PORT: z.preprocess(emptyAsUndefined, int(0).max(65535).default(8080)),
  HOST: z.preprocess(emptyAsUndefined, z.string().min(1).default("127.0.0.1")),
  WORKERS: z.preprocess(emptyAsUndefined, int(1).max(64).default(1)),
  DATABASE_URL: optional(url(["postgres:", "postgresql:"])),
  DATA_DIR: z.preprocess(emptyAsUndefined, z.string().min(1).default("./data")),
  REDIS_URL: optional(url(["redis:", "rediss:"])),
  REDIS_CLUSTER_NODES: optional(clusterNodes),
  OPENAI_API_KEY: optional(z.string().min(1)),
  OPENAI_BASE_URL: z.preprocess(emptyAsUndefined, url(["http:", "https:"]).default("https://api.openai.com/v1")),
  ANTHROPIC_API_KEY: optional(z.string().min(1)),
  ANTHROPIC_BASE_URL: z.preprocess(emptyAsUndefined, url(["http:", "https:"]).default("https://api.anthropic.com")),
  PROVIDERS_FILE: optional(z.string().min(1)),
  ADMIN_API_KEY: optional(z.string().min(16, "must be at least 16 characters")),
  CACHE_TTL_SECONDS: z.preprocess(emptyAsUndefined, int(0).default(3600)),
  CACHE_MAX_ENTRIES: z.preprocess(emptyAsUndefined, int(1).default(10_000)),
  UPSTREAM_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(1).default(120_000)),
  UPSTREAM_MAX_RETRIES: z.preprocess(emptyAsUndefined, int(0).max(10).default(2)),
  UPSTREAM_CONNECT_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(1).default(10_000)),
  UPSTREAM_TOTAL_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(1).default(600_000)),
  UPSTREAM_FALLBACKS: z.preprocess(
    (value) => {
      if (value === undefined || value === "") return {};
      try {
        return JSON.parse(String(value));
      } catch {
        return value; // left as text, so the schema below names the variable
      }
    },
    z.record(z.string().min(1), z.array(z.string().min(1)).min(1), {
      error: 'must be JSON like {"gpt-4o":["gpt-4o-mini"],"summarize":["gpt-4.1-mini"]}',
    }),
  ),
  IDEMPOTENCY_TTL_SECONDS: z.preprocess(emptyAsUndefined, int(1).default(86_400)),
  IDEMPOTENCY_WHILE_RUNNING: z.preprocess(emptyAsUndefined, z.enum(["wait", "reject"]).default("wait")),
  IDEMPOTENCY_WAIT_MS: z.preprocess(emptyAsUndefined, int(0).default(60_000)),
  CIRCUIT_FAILURE_THRESHOLD: z.preprocess(emptyAsUndefined, int(1).default(5)),
  CIRCUIT_COOL_DOWN_MS: z.preprocess(emptyAsUndefined, int(1).default(30_000)),
  BODY_LIMIT_BYTES: z.preprocess(emptyAsUndefined, int(1024).default(1024 * 1024)),
  KEY_CACHE_TTL_MS: z.preprocess(emptyAsUndefined, int(0).default(10_000)),
  SESSION_TTL_HOURS: z.preprocess(emptyAsUndefined, z.coerce.number().positive().max(8760).default(12)),
  // Queued requests (Prefer: respond-async, batches): how many this instance runs at once, how long a running one
  // may go without finishing before another worker takes it up (its worker is presumed dead: keep it above
  // UPSTREAM_TOTAL_TIMEOUT_MS), and how often an idle worker looks for work.
  QUEUE_CONCURRENCY: z.preprocess(emptyAsUndefined, int(0).max(1000).default(4)),
  QUEUE_VISIBILITY_TIMEOUT_SECONDS: z.preprocess(emptyAsUndefined, int(2).default(900)),
  QUEUE_POLL_INTERVAL_MS: z.preprocess(emptyAsUndefined, int(500).default(1000)),
  // Webhooks: whether their URLs may reach loopback and private networks (development only), the key that seals
  // their secrets (unset: one made once and kept in the database), one delivery attempt's deadline, and the first
  // retry's delay in seconds (doubling, 12 retries: about a day at the default).
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: z.preprocess(emptyAsUndefined, flag.default(false)),
  WEBHOOK_SECRET_KEY: z.preprocess(emptyAsUndefined, secretKey.optional()),
  WEBHOOK_TIMEOUT_MS: z.preprocess(emptyAsUndefined, int(100).max(60_000).default(10_000)),
  WEBHOOK_RETRY_DELAY_SECONDS: z.preprocess(emptyAsUndefined, int(1).default(15)),
  CORS_ORIGINS: z.preprocess(emptyAsUndefined, corsOrigins.default([])),
  AUTH_FAILURE_LIMIT: z.preprocess(emptyAsUndefined, int(0).default(20)),
  AUTH_FAILURE_BLOCK_SECONDS: z.preprocess(emptyAsUndefined, int(1).default(300)),
  TRUST_PROXY: z.preprocess(emptyAsUndefined, trustProxy.default(false)),
  DEFAULT_CHAT_MODEL: z.preprocess(emptyAsUndefined, z.string().min(1).default("gpt-4o-mini")),
  DEFAULT_EMBED_MODEL: z.preprocess(emptyAsUndefined, z.string().min(1).default("text-embedding-3-small")),
  LOG_LEVEL: z.preprocess(
    emptyAsUndefined,
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ),
});

export type Config = z.infer<typeof configSchema> & {
  /** PROVIDERS_FILE's providers, read and checked at load, their keys taken from the environment. */
  providers: FileProvider[];
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses an environment; throws ConfigError whose message is one line per bad variable, naming it. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "config");
      return `invalid configuration: ${name}=${JSON.stringify(env[name] ?? "")}: ${issue.message}`;
    });
    throw new ConfigError(lines.join("\n"));
  }
  const file = parsed.data.PROVIDERS_FILE;
  let providers: FileProvider[] = [];
  if (file !== undefined) {
    try {
      providers = loadProvidersFile(file, env);
    } catch (error) {
      throw new ConfigError(
        `invalid configuration: PROVIDERS_FILE=${JSON.stringify(file)}: ${(error as Error).message}`,
      );
    }
  }
  return { ...parsed.data, providers };
}

/** Reads `.env` from the working directory (never overriding the real environment), then parses. */
export async function loadConfigFromEnvironment(): Promise<Config> {
  const { config } = await import("dotenv");
  config({ quiet: true });
  return loadConfig(process.env);
}
