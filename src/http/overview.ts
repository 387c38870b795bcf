import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Overview, OverviewBucket, OverviewFigures, OverviewRepository } from "../db/overview.ts";
import type { UserRepository } from "../db/users.ts";
import { AppError } from "../errors.ts";
import { isId } from "../ids.ts";
import { problemSchema } from "../requests/schemas.ts";
import { callerOf } from "./auth.ts";
// A year, leap day included, as GET /me/usage allows.
import { maxRangeDays } from "./me.ts";

export interface OverviewRoutesDeps {
  overview: OverviewRepository;
  users: UserRepository;
  now?: () => number;
}

const hourMs = 3_600_000;
const dayMs = 86_400_000;
/** A month of hour buckets (744 points) is as fine as a chart gets. */
const maxHourBucketDays = 31;
const defaultRangeDays = 7;

const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).optional();

const overviewQuerySchema = z.strictObject({
  from: instant.describe(
    "Start: YYYY-MM-DD (that UTC day's start) or an ISO 8601 date-time, rounded down to the hour. Default: 7 days before to",
  ),
  to: instant.describe(
    "End, exclusive: YYYY-MM-DD (that UTC day included, as in /me/usage) or an ISO 8601 date-time, rounded up to the " +
      "hour. Default: now, rounded up to the bucket",
  ),
  bucket: z
    .enum(["hour", "day"])
    .default("day")
    .describe(`UTC hours or UTC days; hour buckets for ranges of at most ${maxHourBucketDays} days`),
});

const adminOverviewQuerySchema = overviewQuerySchema.extend({
  user_id: z.string().optional().describe("One user's numbers (usr_…); default everyone's"),
});

const figuresShape = {
  requests: z.number(),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  cost_usd: z.number().describe("US dollars; requests whose model has no known price count as 0"),
  cache_hits: z.number(),
  errors: z.number().describe("Requests with status failed"),
  cache_hit_rate: z.number().describe("cache_hits / requests, 0..1"),
  error_rate: z.number().describe("errors / requests, 0..1"),
  latency_p50_ms: z
    .number()
    .nullable()
    .describe(
      "Median latency from a histogram of third-octave buckets (within 26%, 1 ms below 10 ms); null without requests",
    ),
  latency_p95_ms: z.number().nullable(),
};

const keyedShape = { key: z.string(), ...figuresShape };

const overviewSchema = z
  .object({
    object: z.literal("overview"),
    from: z.string().describe("The range covered, inclusive (ISO 8601 UTC)"),
    to: z.string().describe("Exclusive"),
    bucket: z.enum(["hour", "day"]),
    totals: z.object(figuresShape),
    series: z
      .array(z.object({ start: z.string(), ...figuresShape }))
      .describe(
        "Every bucket of the range, oldest first, empty ones as zeros; an edge bucket covers only its part of the range",
      ),
    by_model: z.array(z.object(keyedShape)).describe("Most requests first"),
    by_provider: z.array(z.object(keyedShape)),
    by_type: z.array(z.object(keyedShape)),
    by_user: z
      .array(z.object({ ...keyedShape, email: z.string().nullable() }))
      .optional()
      .describe("Admins only: per user, most requests first"),
  })
  .meta({ id: "Overview" });

function badQuery(path: string, message: string): AppError {
  return new AppError("invalid_request", `${path}: ${message}`, { errors: [{ path, message }] });
}

/** `2026-11-28T00:00:00Z`: bucket boundaries are whole hours, so no fraction. */
const isoHour = (date: Date) => date.toISOString().replace(".000Z", "Z");

const isDateOnly = (value: string) => value.length === 10;

/**
 * The range an overview covers: `from` rounded down and `to` up to the UTC hour; a date-only `to` includes that day.
 * Throws a 400 naming the field for an empty, too long, or too finely bucketed range.
 */
export function resolveOverviewRange(
  query: { from?: string; to?: string; bucket: OverviewBucket },
  nowMs: number,
): { from: Date; to: Date } {
  const step = query.bucket === "hour" ? hourMs : dayMs;
  const toMs =
    query.to === undefined
      ? Math.ceil(nowMs / step) * step
      : Math.ceil((Date.parse(query.to) + (isDateOnly(query.to) ? dayMs : 0)) / hourMs) * hourMs;
  const fromMs =
    query.from === undefined ? toMs - defaultRangeDays * dayMs : Math.floor(Date.parse(query.from) / hourMs) * hourMs;
  if (fromMs >= toMs) throw badQuery("from", `must be before to (${isoHour(new Date(toMs))})`);
  const days = (toMs - fromMs) / dayMs;
  if (days > maxRangeDays) throw badQuery("to", `must be at most ${maxRangeDays} days after from`);
  if (query.bucket === "hour" && days > maxHourBucketDays) {
    throw badQuery("bucket", `hour buckets cover at most ${maxHourBucketDays} days; use day for this range`);
  }
  return { from: new Date(fromMs), to: new Date(toMs) };
}

function formatFigures(figures: OverviewFigures) {
  return {
    requests: figures.requests,
    prompt_tokens: figures.promptTokens,
    completion_tokens: figures.completionTokens,
    total_tokens: figures.totalTokens,
    cost_usd: figures.costUsd,
    cache_hits: figures.cacheHits,
    errors: figures.errors,
    cache_hit_rate: figures.cacheHitRate,
    error_rate: figures.errorRate,
    latency_p50_ms: figures.latencyP50Ms,
    latency_p95_ms: figures.latencyP95Ms,
  };
}

function formatOverview(overview: Overview, range: { from: Date; to: Date }, bucket: OverviewBucket) {
  return {
    object: "overview" as const,
    from: isoHour(range.from),
    to: isoHour(range.to),
    bucket,
    totals: formatFigures(overview.totals),
    series: overview.series.map((point) => ({ start: isoHour(point.start), ...formatFigures(point) })),
    by_model: overview.byModel.map((entry) => ({ key: entry.key, ...formatFigures(entry) })),
    by_provider: overview.byProvider.map((entry) => ({ key: entry.key, ...formatFigures(entry) })),
    by_type: overview.byType.map((entry) => ({ key: entry.key, ...formatFigures(entry) })),
    ...(overview.byUser && {
      by_user: overview.byUser.map((entry) => ({ key: entry.key, email: entry.email, ...formatFigures(entry) })),
    }),
  };
}

export function registerOverviewRoutes(app: FastifyInstance, deps: OverviewRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const now = deps.now ?? Date.now;
  const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema };

  routes.get("/me/overview", {
    config: { access: "user" },
    schema: {
      summary: "The caller's usage over a range: a series of hour or day buckets and breakdowns (at most 366 days)",
      tags: ["me"],
      querystring: overviewQuerySchema,
      response: { 200: overviewSchema, ...errors },
    },
    handler: async (request) => {
      const { user } = callerOf(request);
      const { bucket } = request.query;
      const range = resolveOverviewRange(request.query, now());
      const overview = await deps.overview.overview({ ...range, bucket, userId: user.id, byUser: false });
      return formatOverview(overview, range, bucket);
    },
  });

  routes.get("/admin/overview", {
    config: { access: "admin" },
    schema: {
      summary: "Everyone's usage over a range, or one user's, with a breakdown by user (at most 366 days)",
      tags: ["admin"],
      querystring: adminOverviewQuerySchema,
      response: { 200: overviewSchema, ...errors, 404: problemSchema },
    },
    handler: async (request) => {
      const { bucket, user_id: userId } = request.query;
      const range = resolveOverviewRange(request.query, now());
      if (userId !== undefined) {
        if (!isId("usr", userId)) throw badQuery("user_id", "must be a user id (usr_…)");
        if (!(await deps.users.get(userId))) throw new AppError("not_found", `no user ${userId}`);
      }
      const overview = await deps.overview.overview({ ...range, bucket, userId, byUser: true });
      return formatOverview(overview, range, bucket);
    },
  });
}
