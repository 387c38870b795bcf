import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Fastify from "fastify";
import { errorHandler } from "../src/http/error-handler.ts";
import { BudgetUnavailableError, createLimiter, LimitRefusedError } from "../src/limits/limiter.ts";

/** The one place a limit's answer becomes HTTP: the error handler, for native routes and /v1 alike. */
describe("limit refusals answered over HTTP", () => {
  async function appThrowing(error: () => Error) {
    const app = Fastify();
    app.setErrorHandler(errorHandler);
    app.get("/requests", async () => {
      throw error();
    });
    app.get("/v1/models", async () => {
      throw error();
    });
    return app;
  }

  test("a refusal is a 429 with Retry-After, retry-after-ms and x-ratelimit-*; OpenAI's shape under /v1", async () => {
    const refusal = {
      limit: "rpm" as const,
      scope: "key" as const,
      allowed: 5,
      retryAfterMs: 1_500,
      state: { requests: { limit: 5, remaining: 0, resetMs: 1_500 } },
    };
    const app = await appThrowing(() => new LimitRefusedError(refusal));
    const native = await app.inject({ method: "GET", url: "/requests" });
    assert.equal(native.statusCode, 429);
    assert.equal(native.headers["retry-after"], "2");
    assert.equal(native.headers["retry-after-ms"], "1500");
    assert.equal(native.headers["x-ratelimit-remaining-requests"], "0");
    assert.equal(native.headers["x-should-retry"], undefined);
    assert.match(String(native.headers["content-type"]), /problem\+json/);
    assert.match(native.json().detail, /5 requests per minute for this API key/);
    const v1 = await app.inject({ method: "GET", url: "/v1/models" });
    assert.equal(v1.statusCode, 429);
    assert.equal(v1.json().error.type, "rate_limit_error");
    await app.close();
  });

  test("a budget that cannot be checked (the database failing) is a 503 with Retry-After, not a 500", async () => {
    const limiter = createLimiter({
      loadMonthSpendUsd: async () => {
        throw new Error("connection terminated");
      },
    });
    const user = { userId: "usr_budget_check", keyId: null, rpm: null, tpm: null, monthlyBudgetUsd: 1 };
    const failure = await limiter.reserve(user, { tokens: 1, costUsd: 0.01 }).catch((error: unknown) => error);
    await limiter.close();
    assert.ok(failure instanceof BudgetUnavailableError, String(failure));

    const app = await appThrowing(() => failure);
    const answer = await app.inject({ method: "GET", url: "/requests" });
    assert.equal(answer.statusCode, 503);
    assert.equal(answer.headers["retry-after"], "1");
    assert.match(answer.json().detail, /budget could not be checked/);
    await app.close();
  });
});
