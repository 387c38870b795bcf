import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { changedErrorReports, throttledReports } from "../../src/observability/throttled-log.ts";

describe("failure reports", () => {
  test("throttled: the first at once, then one per interval with the count left unreported; a success ends it", () => {
    const reports: Array<{ error: unknown; unreported: number }> = [];
    let clock = 0;
    const failures = throttledReports((error, unreported) => reports.push({ error, unreported }), {
      intervalMs: 1_000,
      now: () => clock,
    });
    failures.failed("a");
    failures.failed("b");
    failures.failed("c");
    assert.deepEqual(reports, [{ error: "a", unreported: 0 }]);
    clock = 999;
    failures.failed("d");
    assert.equal(reports.length, 1);
    clock = 1_000;
    failures.failed("e");
    assert.deepEqual(reports[1], { error: "e", unreported: 3 });
    failures.failed("f");
    failures.recovered();
    failures.failed("g");
    assert.deepEqual(reports[2], { error: "g", unreported: 1 }, "at once after a success, with what was left");
  });

  test("changed: only when the message differs from the previous failure's, and again after a success", () => {
    const reported: string[] = [];
    const failures = changedErrorReports((error) => reported.push(error.message));
    failures.failed(new Error("refused"));
    failures.failed(new Error("refused"));
    failures.failed(new Error("timed out"));
    failures.failed(new Error("refused"));
    failures.recovered();
    failures.failed(new Error("refused"));
    assert.deepEqual(reported, ["refused", "timed out", "refused", "refused"]);
  });
});
