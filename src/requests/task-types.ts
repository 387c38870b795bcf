import type { RequestType } from "../db/types.ts";
import type { ChatCompletion, ChatCompletionRequest, ChatMessage, EmbeddingRequest } from "../providers/provider.ts";
import type { CreateRequestOf } from "./schemas.ts";
import { validateAgainst } from "./json-schema-validator.ts";

/**
 * Each request type in one place: its system prompt, the upstream call it becomes, and how the answer is read.
 * Adding a type means adding a schema in schemas.ts and an entry here.
 */

export type ParsedOutput = { ok: true; output: unknown } | { ok: false; problem: string };

export interface ChatTask<T extends RequestType> {
  kind: "chat";
  /** Structured-output types get one retry when the model's answer does not fit. */
  retryInvalidOutput: boolean;
  build(request: CreateRequestOf<T>, model: string): ChatCompletionRequest;
  parse(completion: ChatCompletion, request: CreateRequestOf<T>): ParsedOutput;
}

export interface EmbedTask {
  kind: "embed";
  build(request: CreateRequestOf<"embed">, model: string): EmbeddingRequest;
}

type TaskTable = { [T in Exclude<RequestType, "embed">]: ChatTask<T> } & { embed: EmbedTask };

const summaryLength = {
  short: "one or two sentences",
  medium: "one short paragraph",
  long: "several paragraphs covering every main point",
} as const;

function system(prompt: string, instructions: string | undefined): ChatMessage {
  return { role: "system", content: instructions ? `${prompt}\n\nAdditional instructions: ${instructions}` : prompt };
}

/** temperature and max_tokens, only when given, so the upstream's defaults apply otherwise. */
function sampling(options: { temperature?: number | undefined; max_tokens?: number | undefined }) {
  const out: { temperature?: number; max_tokens?: number } = {};
  if (options.temperature !== undefined) out.temperature = options.temperature;
  if (options.max_tokens !== undefined) out.max_tokens = options.max_tokens;
  return out;
}

function text(completion: ChatCompletion): ParsedOutput {
  const choice = completion.choices[0];
  if (!choice) return { ok: false, problem: "the upstream answered with no choices" };
  if (choice.message.refusal) return { ok: false, problem: `the model refused: ${choice.message.refusal}` };
  return { ok: true, output: choice.message.content ?? "" };
}

function json(completion: ChatCompletion): { ok: true; value: unknown } | { ok: false; problem: string } {
  const answer = text(completion);
  if (!answer.ok) return answer;
  try {
    return { ok: true, value: JSON.parse(String(answer.output)) };
  } catch {
    return { ok: false, problem: "the model's answer is not valid JSON" };
  }
}

export const taskTypes: TaskTable = {
  chat: {
    kind: "chat",
    retryInvalidOutput: false,
    build(request, model) {
      const messages: ChatMessage[] = [];
      if (request.options.instructions) messages.push({ role: "system", content: request.options.instructions });
      if (typeof request.input === "string") messages.push({ role: "user", content: request.input });
      else messages.push(...request.input);
      return { model, messages, ...sampling(request.options) };
    },
    parse: text,
  },

  summarize: {
    kind: "chat",
    retryInvalidOutput: false,
    build(request, model) {
      const prompt =
        "You summarize the user's text. Answer with the summary only, in the language of the text, " +
        `in ${summaryLength[request.options.length]}.`;
      return {
        model,
        messages: [system(prompt, request.options.instructions), { role: "user", content: request.input }],
        ...sampling(request.options),
      };
    },
    parse: text,
  },

  translate: {
    kind: "chat",
    retryInvalidOutput: false,
    build(request, model) {
      const prompt =
        `Translate the user's text into ${request.options.target_language}. ` +
        "Answer with the translation only; keep the formatting, names and numbers as they are.";
      return {
        model,
        messages: [system(prompt, request.options.instructions), { role: "user", content: request.input }],
        ...sampling(request.options),
      };
    },
    parse: text,
  },

  classify: {
    kind: "chat",
    retryInvalidOutput: true,
    build(request, model) {
      const prompt =
        "Classify the user's text into exactly one of these labels: " +
        `${request.options.labels.map((label) => JSON.stringify(label)).join(", ")}. Answer with the label only.`;
      // Structured output with an enum makes the upstream itself keep to the labels.
      return {
        model,
        messages: [system(prompt, request.options.instructions), { role: "user", content: request.input }],
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "classification",
            strict: true,
            schema: {
              type: "object",
              properties: { label: { type: "string", enum: request.options.labels } },
              required: ["label"],
              additionalProperties: false,
            },
          },
        },
        ...sampling(request.options),
      };
    },
    parse(completion, request) {
      const answer = json(completion);
      if (!answer.ok) return answer;
      const label = (answer.value as { label?: unknown } | null)?.label;
      if (typeof label !== "string" || !request.options.labels.includes(label)) {
        return { ok: false, problem: `the model answered a label that is not one of options.labels: ${String(label)}` };
      }
      return { ok: true, output: { label } };
    },
  },

  extract: {
    kind: "chat",
    retryInvalidOutput: true,
    build(request, model) {
      const prompt =
        "Extract from the user's text the data described by the JSON schema of your answer format. " +
        "Use only what the text says; leave out what it does not say unless the schema requires it.";
      // Not strict: strict mode would refuse most hand-written schemas (it needs every property required).
      return {
        model,
        messages: [system(prompt, request.options.instructions), { role: "user", content: request.input }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "extraction", strict: false, schema: request.options.schema },
        },
        ...sampling(request.options),
      };
    },
    parse(completion, request) {
      const answer = json(completion);
      if (!answer.ok) return answer;
      const check = validateAgainst(request.options.schema, answer.value);
      if (!check.ok)
        return { ok: false, problem: `the model's answer does not match options.schema: ${check.problem}` };
      return { ok: true, output: answer.value };
    },
  },

  embed: {
    kind: "embed",
    build(request, model) {
      const body: EmbeddingRequest = { model, input: request.input, encoding_format: "float" };
      if (request.options.dimensions !== undefined) body.dimensions = request.options.dimensions;
      return body;
    },
  },
};
