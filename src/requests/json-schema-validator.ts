import { Ajv2020 } from "ajv/dist/2020.js";
import { isRecord } from "../is-record.ts";
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

/** A place in a caller's schema that no answer can satisfy: the path inside the schema and what is wrong there. */
export interface SchemaIssue {
  path: Array<string | number>;
  message: string;
}

/** Keywords whose subschemas describe the same value as the schema they sit in: their property names add up. */
const sameValueLists = ["allOf", "anyOf", "oneOf"] as const;
const sameValueSingles = ["then", "else"] as const;
const sameValueMaps = ["dependentSchemas"] as const;
/** Keywords whose subschemas describe another value: a property, an item, a definition. */
const otherValueMaps = ["properties", "patternProperties", "$defs", "definitions"] as const;
const otherValueSingles = ["additionalProperties", "items", "contains", "unevaluatedProperties", "unevaluatedItems"];
const otherValueLists = ["prefixItems", "items"] as const;

/** The subschemas of `schema` that describe its own value, each with its place under `schema`. */
function sameValueParts(schema: Record<string, unknown>): Array<{ part: unknown; at: Array<string | number> }> {
  const parts: Array<{ part: unknown; at: Array<string | number> }> = [];
  for (const key of sameValueLists) {
    const list = schema[key];
    if (Array.isArray(list)) for (const [index, part] of list.entries()) parts.push({ part, at: [key, index] });
  }
  for (const key of sameValueSingles) parts.push({ part: schema[key], at: [key] });
  for (const key of sameValueMaps) {
    const map = schema[key];
    if (isRecord(map)) for (const [name, part] of Object.entries(map)) parts.push({ part, at: [key, name] });
  }
  return parts;
}

/**
 * The property names a schema declares for its value, those of its allOf/anyOf/oneOf/then/else/dependentSchemas
 * parts included; undefined when a `$ref` takes part (references are not followed, so the names are unknown).
 */
function declaredNames(schema: Record<string, unknown>, into = new Set<string>()): Set<string> | undefined {
  if (typeof schema.$ref === "string" || typeof schema.$dynamicRef === "string") return undefined;
  if (isRecord(schema.properties)) for (const name of Object.keys(schema.properties)) into.add(name);
  for (const { part } of sameValueParts(schema)) if (isRecord(part) && !declaredNames(part, into)) return undefined;
  return into;
}

function matchesPattern(schema: Record<string, unknown>, name: string): boolean {
  if (!isRecord(schema.patternProperties)) return false;
  return Object.keys(schema.patternProperties).some((pattern) => {
    try {
      return new RegExp(pattern, "u").test(name);
    } catch {
      return false;
    }
  });
}

const appliesToObjects = (schema: Record<string, unknown>) =>
  schema.type === undefined ||
  schema.type === "object" ||
  (Array.isArray(schema.type) && schema.type.includes("object"));

/**
 * The `required` names that no answer can hold, at every depth (nested properties, items, `$defs` …), at most
 * `maxIssues` of them: a name not declared in `properties` (nor matched by `patternProperties`), which OpenAI's
 * strict structured outputs refuse too, and a name whose schema is `false`. Names declared by the schema's
 * allOf/anyOf/oneOf/then/else/dependentSchemas parts, or by the schema such a part sits in, count as declared.
 * Left alone, so that no schema an answer could satisfy is refused: a value one of whose parts is a `$ref`
 * (references are not followed), and `not` and `if`, where `required` is a condition rather than an obligation.
 */
export function undeclaredRequired(root: Record<string, unknown>, maxIssues = 10): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  // Breadth-first over a list rather than by recursion: a deeply nested schema must not overflow the stack.
  const queue: Array<{ schema: unknown; path: Array<string | number>; inherited: Set<string> | undefined }> = [
    { schema: root, path: [], inherited: new Set() },
  ];
  for (let next = 0; next < queue.length && issues.length < maxIssues; next++) {
    const { schema, path, inherited } = queue[next]!;
    if (!isRecord(schema)) continue;
    const own = declaredNames(schema);
    // undefined: a `$ref` takes part in this value, so its names are unknown here and in its parts.
    const declared = own && inherited ? new Set([...inherited, ...own]) : undefined;

    if (declared && Array.isArray(schema.required) && appliesToObjects(schema)) {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      schema.required.forEach((name, index) => {
        if (typeof name !== "string") return;
        let problem: string | undefined;
        if (!declared.has(name) && !matchesPattern(schema, name)) problem = "is not declared in properties";
        else if (properties[name] === false) problem = "has the schema false in properties";
        if (problem) {
          issues.push({
            path: [...path, "required", index],
            message: `the required property "${name}" ${problem}, so no answer can include it`,
          });
        }
      });
    }

    for (const { part, at } of sameValueParts(schema)) {
      queue.push({ schema: part, path: [...path, ...at], inherited: declared });
    }
    const other = (part: unknown, at: Array<string | number>) =>
      queue.push({ schema: part, path: [...path, ...at], inherited: new Set() });
    for (const key of otherValueMaps) {
      const map = schema[key];
      if (isRecord(map)) for (const [name, part] of Object.entries(map)) other(part, [key, name]);
    }
    for (const key of otherValueSingles) other(schema[key], [key]);
    for (const key of otherValueLists) {
      const list = schema[key];
      if (Array.isArray(list)) for (const [index, part] of list.entries()) other(part, [key, index]);
    }
  }
  return issues.slice(0, maxIssues);
}
