import { buildApp } from "./app.ts";
import { createFirstAdmin } from "./bootstrap.ts";
import type { Config } from "./config.ts";
import { addDrainHooks } from "./http/drain.ts";
import { redisTargetOf } from "./redis-connection.ts";
import { type CreateServicesOptions, createServices, type Services } from "./services.ts";

export interface RunningService {
  app: Awaited<ReturnType<typeof buildApp>>;
  services: Services;
  url: string;
  close(): Promise<void>;
}

/** How long shutdown waits for in-flight requests before cutting their connections. */
export const defaultShutdownGraceMs = 25_000;
/** While draining, how often connections that have become idle are closed. */
const drainSweepMs = 100;
/**
 * After the grace period, how long the handlers of requests whose connections are gone (cut, or closed by their
 * client) get to finish: they cancel their upstream call and store the request as cancelled, which must reach the
 * writer before it closes.
 */
const settleAfterCutMs = 3_000;

export interface StartServiceOptions extends CreateServicesOptions {
  /** How long `close()` waits for in-flight requests before cutting their connections. Default 25 000 ms. */
  shutdownGraceMs?: number;
}

/** loadConfig → createServices → buildApp → listen. The caller decides about signals. */
export async function startService(config: Config, options: StartServiceOptions = {}): Promise<RunningService> {
  const shutdownGraceMs = options.shutdownGraceMs ?? defaultShutdownGraceMs;
  const services = await createServices(config, options);
  const { logger } = services;
  const app = await buildApp({ config, services });

  const drain = addDrainHooks(app);

  // The first admin's key is printed before the port opens: a script that waits for /health (or for the
  // "listening" line) and then reads the output must find it. With PORT=0 the address is known only after listen,
  // so its curl line follows then.
  let firstAdminKey: string | undefined;
  const configuredUrl = config.PORT === 0 ? undefined : urlOf(config.HOST, config.PORT);
  try {
    if (!config.ADMIN_API_KEY) {
      firstAdminKey = (await createFirstAdmin(services.users, services.apiKeys))?.key;
      if (firstAdminKey) printFirstAdmin(firstAdminKey, configuredUrl);
    }
    await app.listen({ port: config.PORT, host: config.HOST });
  } catch (error) {
    await app.close().catch(() => {});
    await services.close().catch(() => {});
    throw error;
  }
  const address = app.server.address();
  const url = urlOf(config.HOST, typeof address === "object" && address ? address.port : config.PORT);
  if (firstAdminKey && !configuredUrl) printTryIt(url, firstAdminKey);

  logger.info(
    {
      url,
      database: services.database.kind,
      cache: services.cache.kind,
      provider: services.provider.name,
      providers: services.provider.slots().map((slot) => slot.name),
    },
    "ai-request-handler listening",
  );
  if (services.database.kind === "pglite")
    logger.info({ dataDir: config.DATA_DIR }, "using the embedded database (PGlite)");
  if (!redisTargetOf(config)) {
    logger.warn(
      "REDIS_URL is unset (and no REDIS_CLUSTER_NODES): cache and limits live in this process only; run one instance only",
    );
  }
  if (services.provider.name === "mock") {
    const others = services.provider.slots().length > 1;
    logger.warn(
      others
        ? "OPENAI_API_KEY is unset: the built-in MOCK provider answers every model no other provider serves " +
            '(responses say "provider": "mock")'
        : "OPENAI_API_KEY is unset: the built-in MOCK provider answers every request; no real model is called " +
            '(responses say "provider": "mock")',
    );
  }

  let closing: Promise<void> | undefined;
  /**
   * Stop accepting (the listener closes; a request on a kept-alive connection is answered 503), let the requests in
   * flight finish for up to `shutdownGraceMs` (each is answered once its record is committed), then write whatever
   * the writer still holds and close the pools. Idempotent.
   */
  const close = () => {
    closing ??= (async () => {
      const startedAt = Date.now();
      drain.start();
      // Answers whose headers went out before the drain began (a stream) end with the connection idle: close those
      // as they turn idle instead of waiting out the keep-alive timeout.
      const sweep = setInterval(() => app.server.closeIdleConnections(), drainSweepMs);
      sweep.unref();
      const grace = setTimeout(() => {
        logger.warn(
          { graceMs: shutdownGraceMs, requests: drain.unfinished() },
          "in-flight requests did not finish in time; closing their connections",
        );
        app.server.closeAllConnections();
      }, shutdownGraceMs);
      grace.unref();
      try {
        await app.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(grace);
      }
      // Every connection is gone, but handlers may still be unwinding (their client left, or the grace period cut
      // them): their records must reach the writer before it closes below.
      if (!(await drain.allFinished(startedAt + shutdownGraceMs + settleAfterCutMs))) {
        logger.error(
          { requests: drain.unfinished() },
          "requests still running after the grace period and the settling time; their records may be lost",
        );
      }
      const pending = services.writer.pending();
      await services.close();
      logger.info(
        { elapsedMs: Date.now() - startedAt, flushedRecords: pending },
        "shut down: requests drained, records written, connections closed",
      );
    })();
    return closing;
  };
  return { app, services, url, close };
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

const rule = "================================================================================";

/**
 * Printed to stdout, never through the logger: the key must not end up in log files. Without `url` (PORT=0, not
 * listening yet) the curl line is left to `printTryIt`.
 */
function printFirstAdmin(key: string, url: string | undefined) {
  const lines = [
    "",
    rule,
    " First start: an admin user (admin@localhost) and its API key were created.",
    " The key is shown only now. Keep it somewhere safe:",
    "",
    `   ${key}`,
    "",
    ...(url ? tryIt(url, key) : [" A curl line to try it follows once the service listens."]),
    rule,
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

function printTryIt(url: string, key: string) {
  process.stdout.write(`${["", rule, ...tryIt(url, key), rule, ""].join("\n")}\n`);
}

function tryIt(url: string, key: string): string[] {
  return [
    " Try it:",
    `   curl -s ${url}/requests -H "Authorization: Bearer ${key}" \\`,
    `     -H "Content-Type: application/json" \\`,
    `     -d '{"type":"summarize","input":"The quick brown fox jumps over the lazy dog."}'`,
  ];
}
