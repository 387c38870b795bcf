import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AppError } from "../src/errors.ts";
import { withCircuitBreaker } from "../src/providers/circuit-breaker.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import type { Provider } from "../src/providers/provider.ts";

/** The breaker's state machine, in front of the in-process mock provider made to fail or wait on demand. */
describe("circuit breaker", () => {
  const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hi" }] };

  function setup() {
    const mock = createMockProvider();
    let failing = true;
    /** While set, calls wait for it: a probe that is still out. */
    let gate: Promise<void> | undefined;
    let openGate = () => {};
    let calls = 0;
    const upstream: Provider = {
      ...mock,
      async chatCompletion(request, options) {
        calls++;
        if (failing) throw new AppError("upstream_error", "upstream answered 503");
        if (gate) await gate;
        return mock.chatCompletion(request, options);
      },
    };
    let now = 0;
    const breaker = withCircuitBreaker(upstream, { failureThreshold: 2, coolDownMs: 1_000, now: () => now });
    return {
      breaker,
      calls: () => calls,
      advance: (ms: number) => {
        now += ms;
      },
      heal: () => {
        failing = false;
      },
      holdNext: () => {
        gate = new Promise<void>((resolve) => {
          openGate = resolve;
        });
      },
      releaseHeld: () => {
        gate = undefined;
        openGate();
      },
    };
  }

  test("opens after the threshold, fails fast with Retry-After, and lets exactly one probe through", async () => {
    const s = setup();
    for (let i = 0; i < 2; i++) await assert.rejects(s.breaker.chatCompletion(body), { code: "upstream_error" });
    assert.equal(s.breaker.circuitState(), "open");
    await assert.rejects(s.breaker.chatCompletion(body), (error: unknown) => {
      assert.ok(error instanceof AppError && error.code === "service_unavailable");
      assert.equal(error.retryAfterSeconds, 1);
      return true;
    });
    assert.equal(s.calls(), 2, "an open circuit makes no call");

    s.advance(1_000);
    s.heal();
    s.holdNext();
    const probe = s.breaker.chatCompletion(body);
    // While the probe is out, everyone else still fails fast.
    await assert.rejects(s.breaker.chatCompletion(body), { code: "service_unavailable" });
    assert.equal(s.calls(), 3, "one probe only");
    s.releaseHeld();
    await probe;
    assert.equal(s.breaker.circuitState(), "closed");
    await s.breaker.chatCompletion(body);
  });

  test("a failed probe opens the circuit again for another cool-down", async () => {
    const s = setup();
    for (let i = 0; i < 2; i++) await assert.rejects(s.breaker.chatCompletion(body));
    s.advance(1_000);
    await assert.rejects(s.breaker.chatCompletion(body), { code: "upstream_error" });
    assert.equal(s.breaker.circuitState(), "open");
    await assert.rejects(s.breaker.chatCompletion(body), { code: "service_unavailable" });
  });

  test("a caller's own error (a 400) does not count toward opening it", async () => {
    const mock = createMockProvider();
    const rejecting: Provider = {
      ...mock,
      chatCompletion: async () => {
        throw new AppError("invalid_request", "bad");
      },
    };
    const breaker = withCircuitBreaker(rejecting, { failureThreshold: 2, coolDownMs: 1_000 });
    for (let i = 0; i < 5; i++) await assert.rejects(breaker.chatCompletion(body), { code: "invalid_request" });
    assert.equal(breaker.circuitState(), "closed");
  });
});
