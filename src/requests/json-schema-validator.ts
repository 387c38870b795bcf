import { Ajv2020 } from "ajv/dist/2020.js";
import type { ValidateFunction } from "ajv";
import { LRUCache } from "lru-cache";
import { canonicalJson } from "./canonical-json.ts";

/**
 * Validates values against caller-supplied JSON Schemas. Compiling a schema costs milliseconds, so compiled
 * validators are kept by the schema's canonical text.
 */
const ajv = new Ajv2020({ strict: false, allErrors: false });
const compiled = new LRUCache<string, ValidateFunction>({ max: 500 });

export type SchemaCheck = { ok: true } | { ok: false; problem: string };

/** Whether the schema itself compiles; the message says what is wrong with it. */
export function checkSchema(schema: Record<string, unknown>): SchemaCheck {
  try {
    validatorFor(schema);
    return { ok: true };
  } catch (error) {
    return { ok: false, problem: error instanceof Error ? error.message : String(error) };
  }
}

export function validateAgainst(schema: Record<string, unknown>, value: unknown): SchemaCheck {
  const validate = validatorFor(schema);
  if (validate(value)) return { ok: true };
  const first = validate.errors?.[0];
  const where = first?.instancePath ? `${first.instancePath} ` : "";
  return { ok: false, problem: `${where}${first?.message ?? "does not match the schema"}` };
}

function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  const key = canonicalJson(schema);
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(key, validate);
  }
  return validate;
}
