import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Metrics } from "../observability/metrics.ts";
import { withTimeout } from "../timeout.ts";

export interface HealthRoutesDeps {
  /** Each named dependency answers or throws; `/ready` is 200 only when all answer. */
  checks: Record<string, () => Promise<void>>;
  metrics: Metrics;
}

const checkTimeoutMs = 2_000;

async function run(check: () => Promise<void>): Promise<"ok" | string> {
  try {
    await withTimeout(check(), checkTimeoutMs, `no answer within ${checkTimeoutMs} ms`);
    return "ok";
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export function registerHealthRoutes(app: FastifyInstance, deps: HealthRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.get("/health", {
    config: { access: "public" },
    schema: {
      summary: "200 while the process serves",
      tags: ["operations"],
      response: { 200: z.object({ status: z.literal("ok") }) },
    },
    handler: async () => ({ status: "ok" as const }),
  });

  const readiness = z.object({ status: z.enum(["ready", "unavailable"]), checks: z.record(z.string(), z.string()) });
  routes.get("/ready", {
    config: { access: "public" },
    schema: {
      summary: "200 when the database (and Redis, where configured) answer, else 503",
      tags: ["operations"],
      response: { 200: readiness, 503: readiness },
    },
    handler: async (_request, reply) => {
      const names = Object.keys(deps.checks);
      const results = await Promise.all(names.map((name) => run(deps.checks[name]!)));
      const checks = Object.fromEntries(names.map((name, i) => [name, results[i]!]));
      const ready = results.every((result) => result === "ok");
      return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", checks });
    },
  });

  routes.get("/metrics", {
    config: { access: "admin" },
    schema: { summary: "Prometheus metrics", tags: ["operations"], produces: ["text/plain"] },
    handler: async (_request, reply) => {
      return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    },
  });
}
