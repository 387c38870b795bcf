import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { AppError, type FieldError, isAppError, toAnthropicError, toOpenAIError, toProblem } from "../errors.ts";
import { isDatabaseUnavailable } from "../db/client.ts";
import { InvalidCursorError } from "../db/cursor.ts";
import { requestTypes } from "../db/types.ts";
import { BudgetUnavailableError, LimitRefusedError } from "../limits/limiter.ts";
import { asksAnthropic } from "./models.ts";
import { refusalError, retryNotWorthMs } from "./limit-refusal.ts";
import { securityHeaders } from "./security-headers.ts";
import { closeInStagesAfterAnswer } from "./staged-close.ts";

/** Under /v1 errors take OpenAI's shape, so its SDKs raise their own typed errors; elsewhere RFC 9457. */
function isOpenAIRoute(request: FastifyRequest): boolean {
  return isOpenAIPath(request.url);
}

/** The same decision from a request target alone, for answers given before Fastify has a request. */
export function isOpenAIPath(url: string): boolean {
  return url.startsWith("/v1/") || url === "/v1";
}

/** `/v1/messages…` answers errors in Anthropic's shape, so its SDKs (and Claude Code) raise their own. */
export function isAnthropicPath(url: string): boolean {
  return url === "/v1/messages" || url.startsWith("/v1/messages/") || url.startsWith("/v1/messages?");
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(Math.ceil(error.retryAfterSeconds)));
  if (error.headers) reply.headers(error.headers);
  if (isOpenAIRoute(request)) {
    // OpenAI's and Anthropic's SDKs retry a 429 at once unless told otherwise; a wait of minutes is not worth
    // hammering for.
    if (error.status === 429 && (error.retryAfterSeconds ?? 0) * 1000 > retryNotWorthMs) {
      reply.header("x-should-retry", "false");
    }
    if (isAnthropicPath(request.url) || (request.url.startsWith("/v1/models") && asksAnthropic(request))) {
      const { status, body } = toAnthropicError(error, request.id);
      return reply.code(status).type("application/json").send(body);
    }
    return reply.code(error.status).type("application/json").send(toOpenAIError(error));
  }
  reply.code(error.status);
  return reply.type("application/problem+json").send(toProblem(error, request.id));
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  let appError = toAppError(error);
  // OpenAI answers every invalid body with 400; its SDKs expect BadRequestError there, not 422.
  if (appError.code === "validation_failed" && isOpenAIRoute(request)) {
    appError = new AppError("invalid_request", appError.message, { errors: appError.errors });
  }
  if (appError.code === "internal") {
    request.log.error({ err: error, requestId: request.id }, "unexpected error");
  } else if (appError.code === "service_unavailable" && !isAppError(error)) {
    request.log.warn({ err: error, requestId: request.id }, "a dependency is unavailable");
  }
  if (appError.code === "payload_too_large") {
    // The client may still be writing the body: this connection ends after the answer, but only once the rest of
    // the body has been read (within bounds), so that the client gets to read the 413 instead of a reset.
    reply.header("connection", "close");
    closeInStagesAfterAnswer(request.raw);
  }
  return sendError(request, reply, appError);
}

/**
 * Errors Fastify meets while routing (a URL it cannot decode, a path parameter over the length limit): no hook runs
 * for these, so the request id and security headers and the request's log line come from here.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header("x-request-id", request.id);
  try {
    securityHeaders(request, reply);
  } catch (err) {
    request.log.warn({ err }, "security headers not set");
  }
  errorHandler(error, request, reply);
  request.log.info({ method: request.method, route: "unmatched", status: reply.statusCode }, "request");
}

const fieldPath = (instancePath: string) => instancePath.replace(/^\//, "").replaceAll("/", ".");

interface ZodIssueLike {
  path: PropertyKey[];
  message: string;
}

/**
 * A value that fits none of a union's forms: name the deepest field that went wrong in the form that got furthest
 * (`input.0.role`), or, when every form failed at the top, say which forms were expected.
 */
function unionErrors(path: string, params: Record<string, unknown>): FieldError[] {
  const branches = Array.isArray(params.errors) ? (params.errors as ZodIssueLike[][]) : [];
  const depth = (issues: ZodIssueLike[]) => Math.max(0, ...issues.map((issue) => issue.path.length));
  const furthest = [...branches].sort((a, b) => depth(b) - depth(a))[0];
  if (furthest && depth(furthest) > 0) {
    return furthest.map((issue) => ({ path: [path, ...issue.path.map(String)].join("."), message: issue.message }));
  }
  const forms = branches.map((issues) => issues[0]?.message.replace(/^Invalid input: /, "")).filter(Boolean);
  return [{ path, message: forms.length ? `matches none of the allowed forms: ${forms.join("; or ")}` : "is invalid" }];
}

/** Turns what Fastify and the schema validator throw into the closed error table. */
function toAppError(error: FastifyError): AppError {
  if (isAppError(error)) return error;
  if (error instanceof LimitRefusedError) return refusalError(error.refusal);
  if (error instanceof BudgetUnavailableError) {
    return new AppError("service_unavailable", "the budget could not be checked; try again shortly", {
      retryAfterSeconds: 1,
      cause: error,
    });
  }

  if (hasZodFastifySchemaValidationErrors(error)) {
    const where = error.validationContext ?? "body";
    const errors: FieldError[] = error.validation.flatMap((issue) => {
      const path = fieldPath(issue.instancePath);
      if (issue.keyword === "invalid_union") return unionErrors(path || where, issue.params);
      return [{ path: path || where, message: issue.message ?? "is invalid" }];
    });
    const typeIssue = where === "body" && errors.find((e) => e.path === "type");
    if (typeIssue) {
      const field = { path: "type", message: `must be one of ${requestTypes.join(", ")}` };
      return new AppError("invalid_request", `type: ${field.message}`, { errors: [field] });
    }
    const detail = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
    // A wrong query or path parameter is a bad request; a body that parses but does not fit is unprocessable.
    return new AppError(where === "body" ? "validation_failed" : "invalid_request", detail, { errors });
  }

  switch (error.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new AppError("invalid_json", `the body is not valid JSON: ${error.message}`, {
        errors: [{ path: "body", message: error.message }],
      });
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new AppError("payload_too_large", "the body is larger than the service accepts", {
        errors: [{ path: "body", message: error.message }],
      });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new AppError("unsupported_media_type", "send the body as application/json", {
        errors: [{ path: "content-type", message: "must be application/json" }],
      });
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new AppError("invalid_request", "the Content-Length header does not match the body");
    case "FST_ERR_BAD_URL":
      return new AppError("invalid_request", "the URL's path is not validly percent-encoded", {
        errors: [{ path: "url", message: "is not validly percent-encoded" }],
      });
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new AppError("uri_too_long", "a path parameter of the URL is longer than the service accepts", {
        errors: [{ path: "url", message: "has a path parameter that is too long" }],
      });
  }
  // Every paginated list reports a cursor it did not hand out the same way.
  if (error instanceof InvalidCursorError) {
    return new AppError("invalid_request", "cursor: not a cursor this endpoint returned", {
      errors: [{ path: "cursor", message: "not a cursor this endpoint returned" }],
    });
  }
  if (isDatabaseUnavailable(error)) {
    return new AppError("service_unavailable", "the database is unavailable; try again shortly", {
      retryAfterSeconds: 1,
      cause: error,
    });
  }
  if (error instanceof SyntaxError) {
    return new AppError("invalid_json", `the body is not valid JSON: ${error.message}`);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new AppError("invalid_request", error.message);
  return new AppError("internal", "something went wrong on our side; the request id identifies it in our logs", {
    cause: error,
  });
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return sendError(
    request,
    reply,
    new AppError("not_found", `no route for ${request.method} ${request.url.split("?")[0]}`),
  );
}
