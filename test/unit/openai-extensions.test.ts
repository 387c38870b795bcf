import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AppError } from "../../src/errors.ts";
import { withoutAnthropicExtensions } from "../../src/providers/openai-extensions.ts";
import type { ChatCompletionRequest } from "../../src/providers/provider.ts";

describe("what only Anthropic understands is taken off before an OpenAI-compatible call", () => {
  test("a plain OpenAI body is passed as the very same object (nothing copied)", () => {
    const body: ChatCompletionRequest = {
      model: "gpt-4o",
      messages: [
        { role: "user", content: [{ type: "text", text: "hi" }] },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function" }] },
      ],
      tools: [{ type: "function", function: { name: "f" } }],
    };
    assert.equal(withoutAnthropicExtensions(body), body);
  });

  test("every extension goes, everything else stays; the caller's body is not changed", () => {
    const body: ChatCompletionRequest = {
      model: "gpt-4o",
      anthropic: { top_k: 5 },
      thinking: { type: "enabled", budget_tokens: 2048 },
      messages: [
        { role: "system", content: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }] },
        {
          role: "assistant",
          content: "Let me look.",
          thinking_blocks: [{ type: "thinking", thinking: "hmm", signature: "sig" }],
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" }, anthropic: { x: 1 } }],
        },
        { role: "tool", tool_call_id: "c1", content: "failed", is_error: true },
      ],
      tools: [{ type: "function", function: { name: "f" }, cache_control: { type: "ephemeral" } }],
      temperature: 0.5,
    };
    const snapshot = structuredClone(body);
    assert.deepEqual(withoutAnthropicExtensions(body), {
      model: "gpt-4o",
      messages: [
        { role: "system", content: [{ type: "text", text: "Be brief." }] },
        {
          role: "assistant",
          content: "Let me look.",
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "c1", content: "failed" },
      ],
      tools: [{ type: "function", function: { name: "f" } }],
      temperature: 0.5,
    });
    assert.deepEqual(body, snapshot);
  });

  test("an Anthropic-only block has no OpenAI form: 400 naming where it is", () => {
    const body: ChatCompletionRequest = {
      model: "gpt-4o",
      messages: [
        { role: "user", content: "first" },
        {
          role: "user",
          content: [
            { type: "text", text: "read this" },
            { type: "anthropic", block: { type: "document", source: { type: "text", data: "..." } } },
          ],
        },
      ],
    };
    assert.throws(
      () => withoutAnthropicExtensions(body),
      (error: unknown) =>
        error instanceof AppError &&
        error.status === 400 &&
        error.param === "messages[1].content[1]" &&
        /document blocks reach only Anthropic/.test(error.message),
    );
  });
});
