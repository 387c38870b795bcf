import { randomUUID } from "node:crypto";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler } from "fastify-type-provider-zod";
import type { Config } from "./config.ts";
import { createAuthHook } from "./http/auth.ts";
import { createClientErrorHandler, handleExpectations } from "./http/connection-errors.ts";
import { registerCors } from "./http/cors.ts";
import { errorHandler, frameworkErrorHandler, notFoundHandler } from "./http/error-handler.ts";
import { registerAdminRoutes } from "./http/admin.ts";
import { registerHealthRoutes } from "./http/health.ts";
import { createIdempotencyHooks } from "./http/idempotency.ts";
import { registerMeRoutes } from "./http/me.ts";
import { registerOverviewRoutes } from "./http/overview.ts";
import { registerMyKeysRoutes } from "./http/my-keys.ts";
import { registerAnthropicRoutes } from "./http/anthropic.ts";
import { registerModelRoutes } from "./http/models.ts";
import { registerOpenAIRoutes } from "./http/openai.ts";
import { registerRequestRoutes } from "./http/requests.ts";
import { registerBatchRoutes } from "./http/batches.ts";
import { registerWebhookRoutes } from "./http/webhooks.ts";
import { securityHeaders } from "./http/security-headers.ts";
import { registerDashboard } from "./http/dashboard.ts";
import { createSessionAuth, registerSessionRoutes } from "./http/session.ts";
import type { Services } from "./services.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** What the one log line per request says besides the basics; routes fill it in. */
    logFields: { userId?: string; type?: string; model?: string; cache?: string; requestRecordId?: string };
  }
}

export interface BuildAppOptions {
  config: Config;
  services: Services;
}

const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp({ config, services }: BuildAppOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps route modules typed against the default instance.
    loggerInstance: services.logger as FastifyBaseLogger,
    // The onResponse hook below writes the one line per request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    // The client's own request id when it is sane, a fresh one otherwise.
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && saneRequestId.test(given) ? given : randomUUID();
    },
    // request.ip (the per-address limit on failed authentication) from X-Forwarded-For only behind trusted proxies.
    trustProxy: trustProxyOf(config.TRUST_PROXY),
    return503OnClosing: true,
    forceCloseConnections: "idle",
    // What Node's parser and Fastify's router refuse before any route runs answers in the API's error shapes too.
    clientErrorHandler: createClientErrorHandler(services.logger as FastifyBaseLogger),
    frameworkErrors: frameworkErrorHandler,
  });
  handleExpectations(app.server, config.BODY_LIMIT_BYTES, services.logger as FastifyBaseLogger);

  // Only JSON bodies: a text/plain body is refused with 415 instead of being parsed as a string.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(validatorCompiler);
  // Responses are built by our own formatters; plain JSON.stringify skips a second pass through zod.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  app.decorateRequest("principal", null);
  app.decorateRequest("logFields", null as never);

  const { metrics } = services;
  // One synchronous hook for what every request gets on arrival (no promise per request).
  app.addHook("onRequest", (request, reply, done) => {
    request.logFields = {};
    reply.header("x-request-id", request.id);
    securityHeaders(request, reply);
    done();
  });
  // Before the auth hook, so that a 401 or 429 still carries the CORS headers a browser needs to read it.
  await registerCors(app, config.CORS_ORIGINS);
  app.addHook(
    "onRequest",
    createAuthHook({
      verifier: services.keyVerifier,
      adminApiKey: config.ADMIN_API_KEY,
      failures: services.authFailures,
      onBlocked: () => metrics.rateLimitRejections.inc({ limit: "auth" }),
      sessions: createSessionAuth(services.sessions),
    }),
  );

  // One line per request: who, what, how it went. Never a key, never a prompt or output.
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route, method: request.method }, seconds);
    // The line's object is built only when it will be written.
    if (route === "/health" || route === "/metrics" || !services.logger.isLevelEnabled("info")) return done();
    request.log.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        latencyMs: Math.round(reply.elapsedTime * 100) / 100,
        ...request.logFields,
      },
      "request",
    );
    done();
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "AI Request Handler",
        version: "0.1.0",
        description: "Authenticated, cached, rate-limited and recorded access to language models.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs", uiConfig: { deepLinking: false } });

  app.get("/openapi.json", { config: { access: "public" }, schema: { hide: true } }, async () => app.swagger());

  registerHealthRoutes(app, {
    metrics,
    checks: services.readinessChecks,
  });
  const idempotency = createIdempotencyHooks({
    store: services.idempotencyStore,
    whileRunning: config.IDEMPOTENCY_WHILE_RUNNING,
    waitMs: config.IDEMPOTENCY_WAIT_MS,
    logger: services.logger,
  });
  registerRequestRoutes(app, {
    requestService: services.requestService,
    acceptance: services.acceptance,
    requests: services.requests,
    idempotency,
  });
  registerBatchRoutes(app, {
    acceptance: services.acceptance,
    batches: services.batches,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
  });
  registerWebhookRoutes(app, { webhooks: services.webhooks, webhookService: services.webhookService });
  registerOpenAIRoutes(app, { requestService: services.requestService, idempotency });
  registerModelRoutes(app, { provider: services.provider });
  registerAnthropicRoutes(app, { requestService: services.requestService, provider: services.provider, idempotency });
  registerAdminRoutes(app, { users: services.users, apiKeys: services.apiKeys, revocation: services.keyRevocation });
  registerMeRoutes(app, { usage: services.usage, limiter: services.limiter });
  registerOverviewRoutes(app, { overview: services.overview, users: services.users });
  registerMyKeysRoutes(app, { apiKeys: services.apiKeys, revocation: services.keyRevocation });
  registerSessionRoutes(app, {
    sessions: services.sessions,
    verifier: services.keyVerifier,
    adminApiKey: config.ADMIN_API_KEY,
    ttlHours: config.SESSION_TTL_HOURS,
    failures: services.authFailures,
  });
  await registerDashboard(app);

  return app;
}

/** A hop count is what proxy-addr means by a number; Fastify's types only name its function form. */
function trustProxyOf(setting: Config["TRUST_PROXY"]) {
  return typeof setting === "number" ? (_address: string, hop: number) => hop < setting : setting;
}
