/**
 * Validates values against OpenAI's own OpenAPI document (shared/reference/openai-openapi.json), so the wire format
 * is checked against OpenAI's definition rather than our reading of it. The 3.4 MB document is read and compiled
 * lazily, once per process, and each component schema's validator is cached.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import ajvFormats from "ajv-formats";

/** `<repo>/../shared/reference/…`: in CI `shared/` sits beside the clone, as it sits beside /work/main here. */
const openAISpecUrl = new URL("../../../shared/reference/openai-openapi.json", import.meta.url);

const documentId = "https://openai.local/openapi.json";

// ajv-formats is CommonJS: under NodeNext the default import is `module.exports`, whose `.default` is the plugin.
const addFormats = ajvFormats.default;

let ajv: Ajv2020 | undefined;
const validators = new Map<string, ValidateFunction>();

function getAjv(): Ajv2020 {
  if (ajv) return ajv;
  const document = JSON.parse(readFileSync(openAISpecUrl, "utf8")) as Record<string, unknown>;
  // strict: false because the document carries OpenAPI keywords (discriminator, x-oaiMeta, nullable, example…)
  // that are not JSON Schema; they are ignored, everything standard is enforced.
  const instance = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(instance);
  // OpenAPI's numeric formats and OpenAI's own: annotations only, accept any value of the declared type.
  for (const format of ["float", "double", "int32", "int64", "unixtime", "binary", "byte"]) {
    instance.addFormat(format, true);
  }
  instance.addSchema(rewriteNullable(document) as Record<string, unknown>, documentId);
  ajv = instance;
  return instance;
}

/**
 * OpenAPI 3.0's `nullable: true` survives in places of this 3.1 document, sometimes beside a `$ref` (which ajv
 * refuses: "nullable cannot be used without type"). It means "or null", so it becomes exactly that: an `anyOf`
 * of the schema and `{type: "null"}`.
 */
function rewriteNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteNullable);
  if (typeof node !== "object" || node === null) return node;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) copy[key] = rewriteNullable(value);
  if (copy.nullable !== true) return copy;
  const { nullable: _nullable, ...schema } = copy;
  return { anyOf: [schema, { type: "null" }] };
}

function getOpenAIValidator(schemaName: string): ValidateFunction {
  let validate = validators.get(schemaName);
  if (!validate) {
    validate = getAjv().getSchema(`${documentId}#/components/schemas/${schemaName}`);
    if (!validate) throw new Error(`OpenAI's document has no component schema named ${schemaName}`);
    validators.set(schemaName, validate);
  }
  return validate;
}

/** Fails the test with ajv's errors (path and message) when `value` does not match the named component schema. */
export function assertMatchesOpenAISchema(schemaName: string, value: unknown): void {
  const validate = getOpenAIValidator(schemaName);
  if (validate(value)) return;
  const errors = (validate.errors ?? [])
    .slice(0, 10)
    .map((error) => `  ${error.instancePath || "/"} ${error.message ?? ""} ${JSON.stringify(error.params)}`)
    .join("\n");
  assert.fail(
    `value does not match OpenAI's ${schemaName}:\n${errors}\nvalue: ${JSON.stringify(value).slice(0, 2000)}`,
  );
}
