/** The mock model's embeddings and model list, in OpenAI's wire shape. */
import { countTextTokens } from "../../tokens.ts";
import type { EmbeddingRequest, EmbeddingResponse, ModelList } from "../provider.ts";
import { createRandom, hashString } from "./seeded.ts";

/** Native vector sizes of OpenAI's embedding models; anything else gets 1536 like text-embedding-3-small. */
function embeddingDimensions(model: string): number {
  return model.startsWith("text-embedding-3-large") ? 3072 : 1536;
}

/** A unit-length vector derived from the input alone: equal texts embed equally, different texts differ. */
function embedText(key: string, dimensions: number): Float64Array {
  const random = createRandom(hashString(key));
  const vector = new Float64Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = random() * 2 - 1;
    vector[i] = value;
    norm += value * value;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dimensions; i++) vector[i] = (vector[i] as number) / norm;
  return vector;
}

/** Base64 of little-endian float32s: what OpenAI sends for `encoding_format: "base64"`. */
function toBase64(vector: Float64Array): string {
  const floats = new Float32Array(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

/** An embeddings answer for a request already checked by `validateEmbeddingRequest`. */
export function createEmbeddings(body: EmbeddingRequest): EmbeddingResponse {
  const input = body.input;
  // One string, one token array, or a list of either.
  const inputs: Array<string | number[]> =
    typeof input === "string"
      ? [input]
      : input.length > 0 && typeof input[0] === "number"
        ? [input as number[]]
        : (input as Array<string | number[]>);
  const dimensions = body.dimensions ?? embeddingDimensions(body.model);
  let promptTokens = 0;
  const data = inputs.map((item, index) => {
    const text = typeof item === "string" ? item : JSON.stringify(item);
    promptTokens += typeof item === "string" ? countTextTokens(item) : item.length;
    const vector = embedText(text, dimensions);
    return {
      object: "embedding" as const,
      index,
      embedding: body.encoding_format === "base64" ? toBase64(vector) : Array.from(vector),
    };
  });
  return {
    object: "list",
    data,
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Models

const models: ModelList = {
  object: "list",
  data: [
    { id: "gpt-4o-mini", object: "model", created: 1721172741, owned_by: "system" },
    { id: "gpt-4o", object: "model", created: 1715367049, owned_by: "system" },
    { id: "gpt-4.1-mini", object: "model", created: 1744318173, owned_by: "system" },
    { id: "gpt-4.1", object: "model", created: 1744316542, owned_by: "system" },
    { id: "text-embedding-3-small", object: "model", created: 1705948997, owned_by: "system" },
    { id: "text-embedding-3-large", object: "model", created: 1705953180, owned_by: "system" },
    { id: "mock", object: "model", created: 1704067200, owned_by: "ai-request-handler" },
  ],
};

export function listMockModels(): ModelList {
  return { object: "list", data: models.data.map((model) => ({ ...model })) };
}
