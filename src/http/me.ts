import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type UsageGroupBy, type UsageRepository, type UsageTotals, sumUsage } from "../db/usage.ts";
import { AppError } from "../errors.ts";
import { budgetMonthOf } from "../limits/limit-store.ts";
import { type Limiter, limitSubjectOf, type WindowState } from "../limits/limiter.ts";
import { formatResetDuration } from "./rate-limit-headers.ts";
import { problemSchema } from "../requests/schemas.ts";
import { roundUsd } from "../usd.ts";
import { apiKeySchema, formatApiKey, formatUser, userSchema } from "./admin.ts";
import { callerOf } from "./auth.ts";

export interface MeRoutesDeps {
  usage: UsageRepository;
  limiter: Limiter;
  now?: () => number;
}

const dayMs = 86_400_000;
/** A year, leap day included: enough for any yearly report, small enough to stay a quick index range. */
export const maxRangeDays = 366;

const totalsSchema = z.object({
  requests: z.number(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  cost_usd: z.number().describe("US dollars; requests whose model has no known price count as 0"),
  cache_hits: z.number(),
});

const windowSchema = z
  .object({
    limit: z.number(),
    remaining: z.number(),
    reset: z.string().describe('Until the window is full again, as in x-ratelimit-reset-*: "6s", "1m0s"'),
  })
  .nullable();

const meSchema = userSchema
  .extend({
    key: apiKeySchema.nullable().describe("The key this call was made with"),
    usage: z.object({
      last_minute: z.object({ requests: z.number(), total_tokens: z.number() }),
      rate_limits: z.object({ requests: windowSchema, tokens: windowSchema }),
      this_month: totalsSchema.extend({
        from: z.string(),
        to: z.string(),
        budget_remaining_usd: z.number().nullable(),
      }),
    }),
  })
  .meta({ id: "Me" });

const usageQuerySchema = z.strictObject({
  from: z.iso.date().optional().describe("First day (UTC), YYYY-MM-DD. Default: the first day of to's month"),
  to: z.iso.date().optional().describe("Last day (UTC), inclusive. Default: today"),
  group_by: z.enum(["day", "model"]).default("day"),
});

const usageSchema = z
  .object({
    object: z.literal("usage"),
    from: z.string(),
    to: z.string(),
    group_by: z.enum(["day", "model"]),
    data: z
      .array(totalsSchema.extend({ day: z.string().optional(), model: z.string().optional() }))
      .describe("One entry per day or model with requests, oldest day or model name first; empty days are left out"),
    totals: totalsSchema,
  })
  .meta({ id: "Usage" });

function formatTotals(totals: UsageTotals) {
  return {
    requests: totals.requests,
    prompt_tokens: totals.promptTokens,
    completion_tokens: totals.completionTokens,
    total_tokens: totals.totalTokens,
    cost_usd: totals.costUsd,
    cache_hits: totals.cacheHits,
  };
}

const formatWindow = (window: WindowState | undefined) =>
  window ? { limit: window.limit, remaining: window.remaining, reset: formatResetDuration(window.resetMs) } : null;

const isoDay = (date: Date) => date.toISOString().slice(0, 10);
const dayStart = (day: string) => new Date(`${day}T00:00:00.000Z`);

function badQuery(path: string, message: string): AppError {
  return new AppError("invalid_request", `${path}: ${message}`, { errors: [{ path, message }] });
}

export function registerMeRoutes(app: FastifyInstance, deps: MeRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const now = deps.now ?? Date.now;
  const config = { access: "user" as const };
  const tags = ["me"];
  const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema };

  routes.get("/me", {
    config,
    schema: { summary: "The caller: user, limits, and current usage", tags, response: { 200: meSchema, ...errors } },
    handler: async (request) => {
      const { user, key } = callerOf(request);
      const at = now();
      const month = budgetMonthOf(at);
      const [minute, thisMonth, windows] = await Promise.all([
        deps.usage.totals({ userId: user.id, from: new Date(at - 60_000), to: new Date(at + 1) }),
        deps.usage.totals({ userId: user.id, from: month.start, to: month.end }),
        deps.limiter.peek(limitSubjectOf(user, key)),
      ]);
      const budget = user.monthlyBudgetUsd;
      return {
        ...formatUser(user),
        key: key ? formatApiKey(key) : null,
        usage: {
          last_minute: { requests: minute.requests, total_tokens: minute.totalTokens },
          rate_limits: { requests: formatWindow(windows.requests), tokens: formatWindow(windows.tokens) },
          this_month: {
            from: isoDay(month.start),
            to: isoDay(new Date(month.end.getTime() - dayMs)),
            ...formatTotals(thisMonth),
            budget_remaining_usd: budget === null ? null : Math.max(0, roundUsd(budget - thisMonth.costUsd)),
          },
        },
      };
    },
  });

  routes.get("/me/usage", {
    config,
    schema: {
      summary: "The caller's usage per day or per model over a date range (at most 366 days)",
      tags,
      querystring: usageQuerySchema,
      response: { 200: usageSchema, ...errors },
    },
    handler: async (request) => {
      const { user } = callerOf(request);
      const groupBy: UsageGroupBy = request.query.group_by;
      const to = request.query.to ?? isoDay(new Date(now()));
      const from = request.query.from ?? `${to.slice(0, 7)}-01`;
      const days = (dayStart(to).getTime() - dayStart(from).getTime()) / dayMs + 1;
      if (days < 1) throw badQuery("from", `must be on or before to (${to})`);
      if (days > maxRangeDays) throw badQuery("to", `must be at most ${maxRangeDays} days after from, counting both`);

      const groups = await deps.usage.grouped(
        { userId: user.id, from: dayStart(from), to: new Date(dayStart(to).getTime() + dayMs) },
        groupBy,
      );
      return {
        object: "usage" as const,
        from,
        to,
        group_by: groupBy,
        data: groups.map((group) => ({ [groupBy]: group.key, ...formatTotals(group) })),
        totals: formatTotals(sumUsage(groups)),
      };
    },
  });
}
