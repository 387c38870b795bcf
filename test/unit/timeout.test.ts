import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { withTimeout } from "../../src/timeout.ts";

describe("withTimeout", () => {
  test("the work's outcome when it settles in time", async () => {
    assert.equal(await withTimeout(Promise.resolve(1), 1_000, "late"), 1);
    await assert.rejects(withTimeout(Promise.reject(new Error("own")), 1_000, "late"), /own/);
  });

  test("a rejection with the message, or the error made, once the time is up", async () => {
    const never = new Promise<never>(() => {});
    await assert.rejects(withTimeout(never, 5, "no answer within 5 ms"), /no answer within 5 ms/);
    await assert.rejects(
      withTimeout(never, 5, () => new RangeError("made")),
      RangeError,
    );
  });
});
