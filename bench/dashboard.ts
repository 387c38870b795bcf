/**
 * The dashboard's reads at scale: seeds a throwaway PostgreSQL database with N stored requests (default 1 000 000)
 * spread over 90 days, fills their usage rollups with migration 0006's own backfill, starts the service on it (in
 * this process) and times the calls the dashboard makes: the overview of everyone and of one user, and a filtered
 * page of requests. A tool for people, never a test: `npx tsx bench/dashboard.ts [--rows 1000000]`.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.ts";
import { createDatabase, type Database, migrateDatabase } from "../src/db/client.ts";
import { rollupTables } from "../src/db/usage-rollups.ts";
import { startService, type RunningService } from "../src/start-service.ts";
import { rebuildRollups } from "../test/helpers/rollup-backfill.ts";
import { createThrowawayDatabase, type ThrowawayDatabase } from "./processes.ts";

const usage = `usage: npx tsx bench/dashboard.ts [options]
  --rows <n>                  stored requests to seed (default 1000000)
  --days <n>                  spread over this many days up to now (default 90)
  --users <n>                 users, the first ones busiest (default 50)
  --calls <n>                 measured calls per query, after 5 discarded ones (default 50)
  --database-admin-url <url>  where the throwaway database is created (default postgres://postgres@127.0.0.1:5432/test)`;

const { values: options } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    days: { type: "string", default: "90" },
    users: { type: "string", default: "50" },
    calls: { type: "string", default: "50" },
    "database-admin-url": { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
    help: { type: "boolean", default: false },
  },
});
if (options.help) {
  console.log(usage);
  process.exit(0);
}
const rows = Number(options.rows);
const days = Number(options.days);
const userCount = Number(options.users);
const calls = Number(options.calls);
for (const [name, value] of Object.entries({ rows, days, users: userCount, calls })) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer\n${usage}`);
    process.exit(2);
  }
}

const dayMs = 86_400_000;
const warmupCalls = 5;
const seedChunkRows = 100_000;
const log = (message: string) => console.log(`[dashboard bench] ${message}`);

/**
 * One chunk of requests: users busier the lower their number (a square of a uniform draw), each with a favourite
 * model; chat most often; 3% failed and 1% cancelled; 20% cache hits of 0–2 ms, the rest log-normal around 800 ms.
 * Ids keep the service's shape (prefix and 21 base-36 characters).
 */
function seedChunkSql(first: number, count: number): string {
  return `
insert into requests (id, user_id, api_key_id, type, source, model, provider, status, input, output, error,
  prompt_tokens, completion_tokens, total_tokens, cost_usd, cached, latency_ms, upstream_ms, created_at, completed_at)
select
  'req_' || lpad(to_hex(g), 21, '0'), 'usr_' || lpad(to_hex(u), 21, '0'), null, type, 'native', model,
  case when model like 'claude%' then 'anthropic' when model like 'llama%' then 'groq' else 'openai' end,
  status, to_jsonb('a text to work on, number ' || g),
  case when status = 'completed' then to_jsonb('an answer for request ' || g) end,
  case when status = 'failed' then '{"code": "upstream_error", "message": "the upstream failed"}'::jsonb end,
  prompt_tokens, completion_tokens, prompt_tokens + completion_tokens,
  case when model like 'llama%' then null else round((prompt_tokens * 0.00000015 + completion_tokens * 0.0000006)::numeric, 9)::float8 end,
  cached, latency_ms, case when cached then null else latency_ms - 2 end,
  created_at, created_at + latency_ms * interval '1 millisecond'
from (
  select g, u, type, status, cached, created_at,
    case when type = 'embed' then 'text-embedding-3-small'
      else (array['gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'llama-3.1-8b-instant'])[
        1 + case when r1 < 0.7 then u % 5 else floor(r2 * 5)::int end] end as model,
    (50 + floor(r3 * 1500))::int as prompt_tokens,
    case when type = 'embed' then 0 else (10 + floor(r4 * 600))::int end as completion_tokens,
    case when cached then floor(r5 * 3)::int
      else greatest(1, least(600000, exp(ln(800) + 0.9 * sqrt(-2 * ln(1 - r5)) * cos(2 * pi() * r6))))::int end as latency_ms
  from (
    select g, floor(${userCount} * power(random(), 2))::int as u,
      (array['chat', 'chat', 'chat', 'chat', 'summarize', 'summarize', 'translate', 'classify', 'extract', 'embed'])[
        1 + floor(random() * 10)::int] as type,
      case when random() < 0.03 then 'failed' when random() < 0.01 then 'cancelled' else 'completed' end as status,
      random() < 0.2 as cached,
      now() - random() * interval '${days} days' as created_at,
      random() as r1, random() as r2, random() as r3, random() as r4, random() as r5, random() as r6
    from generate_series(${first}, ${first + count - 1}) g
  ) draws
) requests`;
}

async function seed(database: Database): Promise<void> {
  const query = (text: string) => database.writer.query({ text, values: [] });
  const started = performance.now();
  await query(`insert into users (id, email, name)
    select 'usr_' || lpad(to_hex(u), 21, '0'), 'bench-user-' || u || '@dashboard.bench', 'Bench user ' || u
    from generate_series(0, ${userCount - 1}) u`);
  for (let first = 1; first <= rows; first += seedChunkRows) {
    const count = Math.min(seedChunkRows, rows - first + 1);
    await query(seedChunkSql(first, count));
    log(`seeded ${first + count - 1} of ${rows} requests (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  const rollupStarted = performance.now();
  await rebuildRollups(database);
  log(`rollups filled by migration 0006's backfill in ${((performance.now() - rollupStarted) / 1000).toFixed(1)} s`);
  await query("vacuum analyze");
  const counts = await database.writer.query({
    text: `select ${Object.values(rollupTables)
      .map((table) => `(select count(*) from ${table.name})::int as ${table.name}`)
      .join(", ")}, pg_size_pretty(pg_database_size(current_database())) as size`,
    values: [],
  });
  log(`rollup rows: ${JSON.stringify(counts.rows[0])}`);
}

interface Timing {
  name: string;
  p50: number;
  p95: number;
  max: number;
}

const percentile = (sorted: readonly number[], quantile: number) =>
  sorted[Math.max(0, Math.ceil(quantile * sorted.length) - 1)] as number;

async function measure(service: RunningService, name: string, path: string, key: string): Promise<Timing> {
  const timesMs: number[] = [];
  for (let i = 0; i < warmupCalls + calls; i++) {
    const started = performance.now();
    const response = await fetch(service.url + path, { headers: { authorization: `Bearer ${key}` } });
    const text = await response.text();
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`${name}: GET ${path} answered ${response.status}: ${text}`);
    if (i >= warmupCalls) timesMs.push(elapsed);
  }
  timesMs.sort((a, b) => a - b);
  return { name, p50: percentile(timesMs, 0.5), p95: percentile(timesMs, 0.95), max: timesMs.at(-1) as number };
}

async function main(): Promise<void> {
  let throwaway: ThrowawayDatabase | undefined;
  let service: RunningService | undefined;
  const cleanUp = async () => {
    await service?.close().catch(() => {});
    await throwaway?.drop().catch(() => {});
  };
  process.once("SIGINT", () => {
    log("interrupted: dropping the database");
    void cleanUp().finally(() => process.exit(130));
  });
  try {
    throwaway = await createThrowawayDatabase(options["database-admin-url"]);
    log(`database ${throwaway.name}`);
    const database = await createDatabase({ databaseUrl: throwaway.url, dataDir: "" });
    try {
      await migrateDatabase(database);
      await seed(database);
    } finally {
      await database.close();
    }

    const adminKey = `bench-admin-${randomBytes(24).toString("hex")}`;
    const config = loadConfig({
      DATABASE_URL: throwaway.url,
      HOST: "127.0.0.1",
      PORT: "0",
      ADMIN_API_KEY: adminKey,
      LOG_LEVEL: "error",
    });
    service = await startService(config);
    const busiest = `usr_${"0".repeat(21)}`;
    const created = await fetch(`${service.url}/admin/users/${busiest}/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: "{}",
    });
    if (created.status !== 201) throw new Error(`creating a key failed: ${created.status} ${await created.text()}`);
    const userKey = ((await created.json()) as { key: string }).key;

    const now = Date.now();
    const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const today = isoDay(now);
    const since = (n: number) => isoDay(now - (n - 1) * dayMs);
    const monthAgo = new Date(now - 30 * dayMs).toISOString();
    const queries: Array<[string, string, string]> = [
      ["admin overview, 30 days by day", `/admin/overview?from=${since(30)}&to=${today}`, adminKey],
      [`admin overview, ${days} days by day`, `/admin/overview?from=${since(days)}&to=${today}`, adminKey],
      ["admin overview, 31 days by hour", `/admin/overview?bucket=hour&from=${since(31)}&to=${today}`, adminKey],
      [
        `admin overview of the busiest user, ${days} days`,
        `/admin/overview?from=${since(days)}&to=${today}&user_id=${busiest}`,
        adminKey,
      ],
      ["me overview, 7 days by hour (busiest user)", "/me/overview?bucket=hour", userKey],
      [
        "me overview, 31 days by hour (busiest user)",
        `/me/overview?bucket=hour&from=${since(31)}&to=${today}`,
        userKey,
      ],
      ["requests ?type=chat&status=completed", "/requests?type=chat&status=completed&limit=50", userKey],
      [
        "requests … &model=…&from=…&to=…",
        `/requests?type=chat&status=completed&model=gpt-4o-mini&from=${monthAgo}&to=${new Date(now).toISOString()}&limit=50`,
        userKey,
      ],
    ];
    const timings: Timing[] = [];
    for (const [name, path, key] of queries) {
      timings.push(await measure(service, name, path, key));
      log(`measured: ${name}`);
    }

    const width = Math.max(...timings.map((timing) => timing.name.length));
    console.log(`\n${rows} requests over ${days} days, ${userCount} users; ${calls} calls each, ms`);
    console.log(`${"query".padEnd(width)}   p50     p95     max`);
    for (const timing of timings) {
      const cells = [timing.p50, timing.p95, timing.max].map((ms) => ms.toFixed(1).padStart(7)).join(" ");
      console.log(`${timing.name.padEnd(width)} ${cells}`);
    }
  } finally {
    await cleanUp();
  }
}

await main();
