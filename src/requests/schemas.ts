import { z } from "zod";
import { requestStatuses, requestTypes } from "../db/types.ts";
import { isStorableText } from "../db/storable-json.ts";
import { checkSchema, undeclaredRequired } from "./json-schema-validator.ts";

/**
 * The native API's shapes. Validation and the OpenAPI document both come from these schemas.
 * Options with a required field use `prefault({})`, so a missing `options` is reported as the missing field
 * inside it (`options.target_language`) rather than as a missing object.
 */

/**
 * A string that names or labels something (a model, a metadata entry, a user): refused with 422 naming the field
 * when it holds U+0000 or an unpaired surrogate, which PostgreSQL's text cannot hold and which no name needs.
 * Content (inputs, instructions, schemas, labels) is stored faithfully instead (db/storable-json.ts).
 */
export const storableString = () =>
  z.string().refine(isStorableText, { message: "must not contain U+0000 or an unpaired UTF-16 surrogate" });

const metadata = z
  .record(storableString().min(1).max(64), storableString().max(512))
  .refine((value) => Object.keys(value).length <= 16, { message: "at most 16 keys" })
  .describe("Your own string labels, stored with the request and returned with it (at most 16 keys).");

const text = z
  .string()
  .refine((value) => value.trim().length > 0, { message: "must not be empty" })
  .describe("The text to work on.");

const chatMessage = z.strictObject({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.string(),
});

const commonOptions = {
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().min(1).max(128_000).optional().describe("Upper bound on the answer's tokens."),
  instructions: z.string().max(8_000).optional().describe("Extra guidance for the model."),
};

/** Deliberately missing the required field, so that validating it names that field; hence the cast. */
const emptyOptions = {} as never;

const streamable = {
  stream: z
    .boolean()
    .default(false)
    .describe("true: answer with server-sent events (`delta` events with text, then `done` with the request object)"),
};

const notStreamable = {
  stream: z
    .literal(false, { error: "streaming is offered for chat, summarize and translate only" })
    .optional()
    .describe("only false: this type answers in one piece"),
};

const common = {
  model: storableString()
    .min(1)
    .max(128)
    .optional()
    .describe("The model; the service's default for the type otherwise."),
  cache: z.boolean().default(true).describe("false: neither read nor write the response cache."),
  metadata: metadata.optional(),
};

const labels = z
  .array(z.string().min(1).max(200))
  .min(2)
  .max(50)
  .refine((values) => new Set(values).size === values.length, { message: "labels must be unique" });

const jsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine((schema) => schema.type === "object", { message: 'must be a JSON Schema whose root has "type": "object"' })
  .superRefine((schema, context) => {
    const check = checkSchema(schema);
    if (!check.ok) {
      context.addIssue({ code: "custom", message: `is not a valid JSON Schema: ${check.problem}` });
      return;
    }
    // Refused here, before a paid upstream call, as OpenAI's strict structured outputs refuse it.
    for (const issue of undeclaredRequired(schema)) {
      context.addIssue({ code: "custom", path: issue.path, message: issue.message });
    }
  })
  .describe(
    "A JSON Schema (root of type object) the output must satisfy. Every name in `required` must be declared in " +
      "`properties` of the same object, at every depth.",
  );

export const chatRequestSchema = z.strictObject({
  type: z.literal("chat"),
  ...streamable,
  input: z.union([text, z.array(chatMessage).min(1)]).describe("A text, or a list of {role, content} messages."),
  options: z.strictObject(commonOptions).default({}),
  ...common,
});

export const summarizeRequestSchema = z.strictObject({
  type: z.literal("summarize"),
  ...streamable,
  input: text,
  options: z.strictObject({ ...commonOptions, length: z.enum(["short", "medium", "long"]).default("medium") }).default({
    length: "medium",
  }),
  ...common,
});

export const translateRequestSchema = z.strictObject({
  type: z.literal("translate"),
  ...streamable,
  input: text,
  options: z
    .strictObject({
      ...commonOptions,
      target_language: z.string().min(2).max(64).describe("The language to translate into, e.g. `French` or `fr`."),
    })
    .prefault(emptyOptions),
  ...common,
});

export const classifyRequestSchema = z.strictObject({
  type: z.literal("classify"),
  ...notStreamable,
  input: text,
  options: z
    .strictObject({ ...commonOptions, labels: labels.describe("2 to 50 distinct labels.") })
    .prefault(emptyOptions),
  ...common,
});

export const extractRequestSchema = z.strictObject({
  type: z.literal("extract"),
  ...notStreamable,
  input: text,
  options: z.strictObject({ ...commonOptions, schema: jsonSchemaObject }).prefault(emptyOptions),
  ...common,
});

export const embedRequestSchema = z.strictObject({
  type: z.literal("embed"),
  ...notStreamable,
  input: text,
  options: z
    .strictObject({ dimensions: z.number().int().min(1).max(8_192).optional().describe("Shorten the embedding.") })
    .default({}),
  ...common,
});

export const createRequestSchema = z
  .discriminatedUnion("type", [
    chatRequestSchema,
    summarizeRequestSchema,
    translateRequestSchema,
    classifyRequestSchema,
    extractRequestSchema,
    embedRequestSchema,
  ])
  .meta({ id: "CreateRequest" });

export type CreateRequest = z.output<typeof createRequestSchema>;
export type CreateRequestOf<T extends CreateRequest["type"]> = Extract<CreateRequest, { type: T }>;

const usage = z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() });

export const requestObjectSchema = z
  .object({
    id: z.string().describe("req_…"),
    object: z.literal("request"),
    type: z.enum(requestTypes),
    status: z.enum(requestStatuses),
    provider: z.string().describe("openai | mock"),
    model: z.string(),
    output: z
      .unknown()
      .describe(
        "text | extract: the parsed JSON object | classify: {label} | embed: {embedding, dimensions}; null when failed",
      ),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    usage,
    cost_usd: z.number().nullable().describe("null when the model's price is unknown; 0 for a cached answer"),
    cached: z.boolean(),
    latency_ms: z.number(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    input: z.unknown().optional().describe("GET /requests/{id} only"),
    options: z.record(z.string(), z.unknown()).nullable().optional().describe("GET /requests/{id} only"),
    retries: z.number().optional().describe("GET /requests/{id} only: upstream retries after the first attempt"),
    attempts: z
      .array(z.object({ model: z.string(), outcome: z.string() }))
      .optional()
      .describe("GET /requests/{id} only: each upstream attempt, fallbacks included (`ok`, `503`, `timeout` …)"),
    source: z
      .enum(["native", "openai", "anthropic"])
      .optional()
      .describe("GET /requests/{id} only: the API it came through"),
    upstream_ms: z.number().nullable().optional().describe("GET /requests/{id} only: time spent on the upstream"),
    entry_ms: z
      .number()
      .nullable()
      .optional()
      .describe(
        "GET /requests/{id} only: time spent on the limits and the cache lookup (one round trip); null when not measured",
      ),
    user_id: z.string().optional().describe("/admin/requests only: whose request"),
  })
  .meta({ id: "Request" });

export const requestListSchema = z
  .object({ data: z.array(requestObjectSchema), next_cursor: z.string().nullable() })
  .meta({ id: "RequestList" });

export const listRequestsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
  type: z.enum(requestTypes).optional(),
  status: z.enum(requestStatuses).optional(),
  model: storableString().min(1).max(200).optional().describe("The model as the caller named it"),
  provider: storableString().min(1).max(100).optional(),
  from: z.iso.datetime({ offset: true }).optional().describe("Created at or after (ISO 8601)"),
  to: z.iso.datetime({ offset: true }).optional().describe("Created before (ISO 8601)"),
  batch_id: storableString().min(1).max(100).optional().describe("The requests of one batch (bat_…)"),
});

export const adminListRequestsQuerySchema = listRequestsQuerySchema.extend({
  user_id: storableString().min(1).max(100).optional().describe("One user's requests; default everyone's"),
});

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number(),
    detail: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    request_id: z.string().optional(),
  })
  .meta({ id: "Problem" });
