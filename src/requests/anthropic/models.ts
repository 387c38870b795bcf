import type { ModelInfo } from "@anthropic-ai/sdk/resources/models";
import type { ModelList } from "../../providers/provider.ts";
import { invalid } from "./fields.ts";

/**
 * The model list in Anthropic's shape (`GET /v1/models` asked with `anthropic-version`, as its SDKs ask): a page
 * of ModelInfo with `has_more`, `first_id` and `last_id`, paged by `limit` (1–1000, default 20) and `after_id` or
 * `before_id`. What a provider does not tell (display name, context window, capabilities) is the id or null.
 */
export interface ModelPage {
  data: ModelInfo[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

export interface PageQuery {
  limit?: string | undefined;
  after_id?: string | undefined;
  before_id?: string | undefined;
}

export function toAnthropicModel(model: ModelList["data"][number]): ModelInfo {
  return {
    type: "model",
    id: model.id,
    display_name: model.id,
    created_at: new Date(model.created * 1000).toISOString().replace(".000Z", "Z"),
    capabilities: null,
    deprecated_at: null,
    lifecycle: "active",
    line: null,
    max_input_tokens: null,
    max_tokens: null,
    retires_at: null,
  };
}

export function toAnthropicModelPage(list: ModelList, query: PageQuery): ModelPage {
  const limit = limitOf(query.limit);
  if (query.after_id !== undefined && query.before_id !== undefined) {
    invalid("before_id", "cannot be combined with after_id");
  }
  const models = list.data.map(toAnthropicModel);
  let start = 0;
  let end = models.length;
  if (query.after_id !== undefined) start = indexOf(models, query.after_id, "after_id") + 1;
  if (query.before_id !== undefined) end = indexOf(models, query.before_id, "before_id");
  // before_id pages backwards: the `limit` models just before it.
  const data =
    query.before_id !== undefined
      ? models.slice(Math.max(start, end - limit), end)
      : models.slice(start, start + limit);
  const hasMore = query.before_id !== undefined ? end - data.length > start : start + data.length < end;
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

function limitOf(value: string | undefined): number {
  if (value === undefined) return 20;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    invalid("limit", "Input should be an integer from 1 to 1000");
  return limit;
}

function indexOf(models: ModelInfo[], id: string, field: string): number {
  const index = models.findIndex((model) => model.id === id);
  if (index < 0) invalid(field, `no model ${id} in the list`);
  return index;
}
