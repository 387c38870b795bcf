/**
 * Which provider serves a model, and a Provider that sends every call to it. The rules, in order:
 *
 *   1. `name/model`, where `name` is a configured provider: that provider, asked for `model`;
 *   2. a model a provider lists (PROVIDERS_FILE `models`), or one a provider's name rule claims (`claude-…` for
 *      Anthropic): that provider;
 *   3. anything else, a prefix that names no provider included (vLLM and Ollama models look like `org/model`): the
 *      default provider, with the name unchanged.
 *
 * A provider that lists its models refuses any other one it is asked for by name (404 naming `model`).
 */
import { AppError } from "../errors.ts";
import type {
  CallOptions,
  ChatCompletionChunk,
  ChatCompletionRequest,
  EmbeddingRequest,
  ModelList,
  Provider,
} from "./provider.ts";

export interface ProviderSlot {
  /** The name in `name/model` and in records, metrics and cache keys. */
  name: string;
  provider: Provider;
  /** The only models it serves, when its configuration lists them. */
  models?: readonly string[];
  /** Models it takes without a prefix, by their name (`claude-…`). */
  claims?: (model: string) => boolean;
}

export interface Route {
  slot: ProviderSlot;
  /** The model as its provider knows it (the `name/` prefix taken off). */
  model: string;
}

export interface ProviderRouter extends Provider {
  route(model: string): Route;
  /** The provider's own count of the prompt's tokens; undefined when it has no API for it. */
  countInputTokens(body: ChatCompletionRequest, options?: CallOptions): Promise<number | undefined>;
  /** The provider that serves `model`: what records, metrics and cache entries name. */
  nameOf(model: string): string;
  slots(): readonly ProviderSlot[];
}

export function createRouter(slots: readonly ProviderSlot[], defaultName: string): ProviderRouter {
  const byName = new Map(slots.map((slot) => [slot.name, slot]));
  const fallback = byName.get(defaultName);
  if (!fallback) throw new Error(`the default provider "${defaultName}" is not configured`);

  function route(model: string): Route {
    const slash = model.indexOf("/");
    if (slash > 0) {
      const named = byName.get(model.slice(0, slash));
      if (named) return served(named, model.slice(slash + 1), model);
    }
    for (const slot of slots) {
      if (slot.models?.includes(model)) return { slot, model };
    }
    for (const slot of slots) {
      if (slot.claims?.(model)) return served(slot, model, model);
    }
    return { slot: fallback as ProviderSlot, model };
  }

  function served(slot: ProviderSlot, model: string, asked: string): Route {
    if (slot.models && !slot.models.includes(model)) {
      throw new AppError(
        "not_found",
        `model "${asked}": provider "${slot.name}" serves ${slot.models.map((name) => `"${name}"`).join(", ")}`,
        { param: "model", errors: [{ path: "model", message: `not served by provider "${slot.name}"` }] },
      );
    }
    if (model === "") {
      throw new AppError("invalid_request", `model "${asked}" names a provider but no model`, {
        param: "model",
        errors: [{ path: "model", message: "names a provider but no model" }],
      });
    }
    return { slot, model };
  }

  /** The call's body with the model as its provider knows it; the same object when nothing changes. */
  const withModel = <B extends { model: string }>(body: B, model: string): B =>
    body.model === model ? body : { ...body, model };

  async function listModels(options?: CallOptions): Promise<ModelList> {
    const lists = await Promise.all(
      slots.map(async (slot) => {
        if (slot.models) {
          return slot.models.map((id) => ({ id, object: "model" as const, created: 0, owned_by: slot.name }));
        }
        try {
          return (await slot.provider.listModels(options)).data;
        } catch {
          // One provider that cannot list its models must not hide the others'.
          return [];
        }
      }),
    );
    const data: ModelList["data"] = [];
    const seen = new Set<string>();
    lists.forEach((list, index) => {
      const slot = slots[index] as ProviderSlot;
      for (const model of list) {
        // Listed by the name that routes to it: the plain id when the rules send it here, `name/id` otherwise.
        let id = model.id;
        try {
          if (route(id).slot !== slot) id = `${slot.name}/${model.id}`;
        } catch {
          id = `${slot.name}/${model.id}`;
        }
        if (seen.has(id)) continue;
        seen.add(id);
        data.push({ ...model, id, owned_by: slot.name });
      }
    });
    return { object: "list", data };
  }

  return {
    name: defaultName,
    route,
    nameOf: (model) => {
      try {
        return route(model).slot.name;
      } catch {
        return defaultName;
      }
    },
    slots: () => slots,

    chatCompletion(body: ChatCompletionRequest, options?: CallOptions) {
      const { slot, model } = route(body.model);
      return slot.provider.chatCompletion(withModel(body, model), options);
    },

    chatCompletionStream(body: ChatCompletionRequest, options?: CallOptions): AsyncIterable<ChatCompletionChunk> {
      const { slot, model } = route(body.model);
      return slot.provider.chatCompletionStream(withModel(body, model), options);
    },

    embeddings(body: EmbeddingRequest, options?: CallOptions) {
      const { slot, model } = route(body.model);
      return slot.provider.embeddings(withModel(body, model), options);
    },

    listModels,

    async countInputTokens(body: ChatCompletionRequest, options?: CallOptions) {
      const { slot, model } = route(body.model);
      return slot.provider.countTokens?.(withModel(body, model), options);
    },

    async close() {
      await Promise.all(slots.map((slot) => slot.provider.close()));
    },
  };
}
