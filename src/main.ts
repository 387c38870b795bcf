import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.ts";
import { createFirstAdmin } from "./bootstrap.ts";
import type { Config } from "./config.ts";
import { type CreateServicesOptions, createServices, type Services } from "./services.ts";

export interface RunningService {
  app: FastifyInstance;
  services: Services;
  url: string;
  close(): Promise<void>;
}

/** How long shutdown waits for in-flight requests before closing anyway. */
const shutdownGraceMs = 25_000;

/** loadConfig → createServices → buildApp → listen. The caller decides about signals. */
export async function startService(config: Config, options: CreateServicesOptions = {}): Promise<RunningService> {
  const services = await createServices(config, options);
  const { logger } = services;
  const app = await buildApp({ config, services });
  await app.listen({ port: config.PORT, host: config.HOST });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.PORT;
  const url = `http://${config.HOST.includes(":") ? `[${config.HOST}]` : config.HOST}:${port}`;

  logger.info(
    { url, database: services.database.kind, cache: services.cache.kind, provider: services.provider.name },
    "ai-request-handler listening",
  );
  if (services.database.kind === "pglite")
    logger.info({ dataDir: config.DATA_DIR }, "using the embedded database (PGlite)");
  if (!config.REDIS_URL) {
    logger.warn("REDIS_URL is unset: cache and limits live in this process only; run one instance only");
  }
  if (services.provider.name === "mock") {
    logger.warn(
      "OPENAI_API_KEY is unset: the built-in MOCK provider answers every request; no real model is called " +
        '(responses say "provider": "mock")',
    );
  }

  if (!config.ADMIN_API_KEY) {
    const admin = await createFirstAdmin(services.users, services.apiKeys);
    if (admin) printFirstAdmin(url, admin.key);
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const timer = setTimeout(() => {
        logger.warn("in-flight requests did not finish in time; closing connections");
        app.server.closeAllConnections();
      }, shutdownGraceMs);
      timer.unref();
      await app.close();
      clearTimeout(timer);
      await services.close();
    })();
    return closing;
  };
  return { app, services, url, close };
}

/** Printed to stdout, never through the logger: the key must not end up in log files. */
function printFirstAdmin(url: string, key: string) {
  const lines = [
    "",
    "================================================================================",
    " First start: an admin user (admin@localhost) and its API key were created.",
    " The key is shown only now. Keep it somewhere safe:",
    "",
    `   ${key}`,
    "",
    " Try it:",
    `   curl -s ${url}/requests -H "Authorization: Bearer ${key}" \\`,
    `     -H "Content-Type: application/json" \\`,
    `     -d '{"type":"summarize","input":"The quick brown fox jumps over the lazy dog."}'`,
    "================================================================================",
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
