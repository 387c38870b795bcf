import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AppError } from "../../src/errors.ts";
import type { ChatCompletionRequest, ModelList, Provider } from "../../src/providers/provider.ts";
import { createRouter, type ProviderSlot } from "../../src/providers/routing.ts";

/** A provider that answers with its own name and the model it was asked for. */
function named(name: string, models: string[] = []): Provider & { asked: string[] } {
  const asked: string[] = [];
  return {
    name,
    asked,
    async chatCompletion(body: ChatCompletionRequest) {
      asked.push(body.model);
      return {
        value: {
          id: "c",
          object: "chat.completion",
          created: 0,
          model: body.model,
          choices: [{ index: 0, message: { role: "assistant", content: name }, finish_reason: "stop" }],
        },
        upstreamMs: 0,
      };
    },
    async *chatCompletionStream() {},
    async embeddings() {
      throw new Error("not used");
    },
    async listModels(): Promise<ModelList> {
      if (name === "broken") throw new Error("unreachable");
      return { object: "list", data: models.map((id) => ({ id, object: "model", created: 0, owned_by: name })) };
    },
    async close() {},
  };
}

function router() {
  const openai = named("openai", ["gpt-4o", "claude-look-alike"]);
  const anthropic = named("anthropic", ["claude-sonnet-4-5"]);
  const vllm = named("vllm");
  const slots: ProviderSlot[] = [
    { name: "openai", provider: openai },
    { name: "anthropic", provider: anthropic, claims: (model) => model.startsWith("claude-") },
    { name: "vllm", provider: vllm, models: ["meta-llama/Llama-3.3-70B", "qwen"] },
  ];
  return { router: createRouter(slots, "openai"), openai, anthropic, vllm };
}

describe("routing a model to its provider", () => {
  const cases: Array<[asked: string, provider: string, upstreamModel: string]> = [
    ["gpt-4o-mini", "openai", "gpt-4o-mini"],
    ["o3-mini", "openai", "o3-mini"],
    ["claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"],
    ["anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"],
    ["openai/gpt-4o", "openai", "gpt-4o"],
    // A prefix is taken only when it names a provider: the explicit one wins over the name rule.
    ["openai/claude-look-alike", "openai", "claude-look-alike"],
    // A model a provider lists goes there without a prefix, slashes and all.
    ["meta-llama/Llama-3.3-70B", "vllm", "meta-llama/Llama-3.3-70B"],
    ["vllm/qwen", "vllm", "qwen"],
    ["qwen", "vllm", "qwen"],
    // Anything else, a prefix naming no provider included, goes to the default unchanged.
    ["mistralai/Mistral-7B", "openai", "mistralai/Mistral-7B"],
    ["some-model", "openai", "some-model"],
  ];
  for (const [asked, provider, upstreamModel] of cases) {
    test(`${asked} → ${provider} (${upstreamModel})`, async () => {
      const { router: r, ...providers } = router();
      assert.equal(r.nameOf(asked), provider);
      const answer = await r.chatCompletion({ model: asked, messages: [{ role: "user", content: "hi" }] });
      assert.equal(answer.value.choices[0]?.message.content, provider);
      assert.deepEqual(providers[provider as keyof typeof providers].asked, [upstreamModel]);
    });
  }

  test("a provider that lists its models refuses another one asked of it by name: 404 naming model", () => {
    const { router: r } = router();
    assert.throws(
      () => r.route("vllm/gpt-4o"),
      (error: unknown) =>
        error instanceof AppError && error.status === 404 && error.param === "model" && /vllm/.test(error.message),
    );
  });

  test("a provider's name with no model after it is a 400 naming model", () => {
    const { router: r } = router();
    assert.throws(
      () => r.route("anthropic/"),
      (error: unknown) => error instanceof AppError && error.status === 400 && error.param === "model",
    );
  });

  test("the models list has every provider's models, each under a name that routes back to it", async () => {
    const { router: r } = router();
    const list = await r.listModels();
    const ids = list.data.map((model) => `${model.id} (${model.owned_by})`);
    assert.deepEqual(ids, [
      "gpt-4o (openai)",
      // The default provider's claude-named model would route to Anthropic by name: listed with its prefix.
      "openai/claude-look-alike (openai)",
      "claude-sonnet-4-5 (anthropic)",
      "meta-llama/Llama-3.3-70B (vllm)",
      "qwen (vllm)",
    ]);
    for (const model of list.data) assert.equal(r.nameOf(model.id), model.owned_by);
  });

  test("a provider that cannot list its models does not hide the others'", async () => {
    const slots: ProviderSlot[] = [
      { name: "openai", provider: named("openai", ["gpt-4o"]) },
      { name: "broken", provider: named("broken") },
    ];
    const list = await createRouter(slots, "openai").listModels();
    assert.deepEqual(
      list.data.map((model) => model.id),
      ["gpt-4o"],
    );
  });
});
