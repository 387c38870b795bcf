import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { messageAllowanceTokens, requestAllowanceTokens } from "../../src/limits/estimate.ts";
import { createLimiter, LimitRefusedError } from "../../src/limits/limiter.ts";
import { createTokenRatios } from "../../src/limits/token-ratios.ts";
import type { JobInfo } from "../../src/requests/job.ts";
import { createReservationStep } from "../../src/requests/reservation.ts";

/** The reservation step on its own: in-process limits, no sockets, no database. */
describe("reservation step", () => {
  const content = "x".repeat(1_000);
  const job = (model: string): JobInfo<unknown> =>
    ({
      model,
      type: "chat",
      estimate: () => ({ body: { messages: [{ role: "user", content }] }, maxOutputTokens: 100 }),
    }) as unknown as JobInfo<unknown>;
  const subject = (limits: { tpm?: number; monthlyBudgetUsd?: number }) => ({
    userId: `usr_step_${Math.random()}`,
    keyId: null,
    rpm: null,
    tpm: limits.tpm ?? null,
    monthlyBudgetUsd: limits.monthlyBudgetUsd ?? null,
  });
  const fixed = requestAllowanceTokens + messageAllowanceTokens;

  test("a model not seen yet holds a token a byte plus the allowances and the output; a learned one holds less", async () => {
    const limiter = createLimiter();
    const tokenRatios = createTokenRatios();
    const step = createReservationStep({ limiter, tokenRatios });
    const who = subject({ tpm: 100_000 });
    const first = await step.reserve(job("m"), who);
    assert.equal(first.state.tokens?.remaining, 100_000 - (1_000 + fixed + 100));

    // The upstream reported 250 prompt tokens for the 1,000 bytes: 0.25 a byte, plus 5 % headroom.
    const taught = job("m");
    const second = await step.reserve(taught, who);
    step.learn(taught, "m", 250 + fixed);
    const learned = await step.reserve(job("m"), who);
    const held = (second.state.tokens?.remaining ?? 0) - (learned.state.tokens?.remaining ?? 0);
    assert.equal(held, Math.ceil(1_000 * 0.25 * 1.05) + fixed + 100);
    await limiter.close();
  });

  test("an unmetered caller holds nothing and measures nothing; a refusal is thrown as LimitRefusedError", async () => {
    const limiter = createLimiter();
    const step = createReservationStep({ limiter, tokenRatios: createTokenRatios() });
    const unmetered = job("m");
    assert.deepEqual((await step.reserve(unmetered, subject({}))).state, {});
    assert.equal(unmetered.size, undefined);
    await assert.rejects(step.reserve(job("m"), subject({ tpm: 10 })), LimitRefusedError);
    await limiter.close();
  });

  test("a fallback's higher price is what the budget holds", async () => {
    const limiter = createLimiter();
    const step = createReservationStep({
      limiter,
      tokenRatios: createTokenRatios(),
      fallbacks: { "gpt-4o-mini": ["gpt-4o"] },
    });
    assert.deepEqual(step.modelsOf(job("gpt-4o-mini")), ["gpt-4o-mini", "gpt-4o"]);
    // gpt-4o-mini's worst case fits a $0.001 budget; gpt-4o's ($2.50 / $10 per million) does not.
    const refused = await step.reserve(job("gpt-4o-mini"), subject({ monthlyBudgetUsd: 0.001 })).catch((e) => e);
    assert.ok(refused instanceof LimitRefusedError && refused.refusal.limit === "budget", String(refused));
    await limiter.close();
  });
});
