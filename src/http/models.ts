import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { AppError } from "../errors.ts";
import type { ModelList, Provider } from "../providers/provider.ts";
import { toAnthropicModel, toAnthropicModelPage } from "../requests/anthropic/models.ts";

export interface ModelRoutesDeps {
  provider: Provider;
}

/** How long the model list is kept: it changes rarely, and a client may ask for it on every start. */
const modelListTtlMs = 60_000;

/** Anthropic's SDKs send `anthropic-version` on every call; OpenAI's never do. One path, the asker's shape. */
export const asksAnthropic = (request: FastifyRequest): boolean => request.headers["anthropic-version"] !== undefined;

const pageQuery = z.object({
  limit: z.string().optional(),
  after_id: z.string().optional(),
  before_id: z.string().optional(),
});
const passThrough = z.unknown().describe("OpenAI's model list or model, or Anthropic's page or ModelInfo");

/**
 * `GET /v1/models` and `/v1/models/{model}`: every provider's models, each under the name that routes back to it,
 * as OpenAI lists them, or as Anthropic does when the caller sends `anthropic-version`.
 */
export function registerModelRoutes(app: FastifyInstance, deps: ModelRoutesDeps) {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const tags = ["openai", "anthropic"];

  let cached: { list: ModelList; fetchedAt: number } | undefined;
  const modelList = async (): Promise<ModelList> => {
    if (!cached || Date.now() - cached.fetchedAt > modelListTtlMs) {
      cached = { list: await deps.provider.listModels(), fetchedAt: Date.now() };
    }
    return cached.list;
  };

  routes.get("/v1/models", {
    config: { access: "user" },
    schema: {
      summary: "The models this service offers (OpenAI's list; Anthropic's page when anthropic-version is sent)",
      tags,
      querystring: pageQuery,
      response: { 200: passThrough },
    },
    handler: async (request) => {
      const list = await modelList();
      return asksAnthropic(request) ? toAnthropicModelPage(list, request.query) : list;
    },
  });

  routes.get("/v1/models/*", {
    config: { access: "user" },
    schema: {
      summary: "One model (OpenAI's Model; Anthropic's ModelInfo when anthropic-version is sent)",
      tags,
      response: { 200: passThrough },
    },
    handler: async (request) => {
      // A wildcard, not a parameter: routed names hold a slash (`anthropic/claude-sonnet-4-5`). The router has
      // already decoded it; decoding again would turn a model named `%ZZ` (sent as `%25ZZ`) into an error.
      const id = (request.params as { "*": string })["*"];
      const model = (await modelList()).data.find((entry) => entry.id === id);
      if (!model) throw new AppError("not_found", `The model '${id}' does not exist`, { param: "model" });
      return asksAnthropic(request) ? toAnthropicModel(model) : model;
    },
  });
}
