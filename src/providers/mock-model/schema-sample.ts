/** JSON from a JSON Schema: the mock model's structured output and tool arguments. */
import { isRecord } from "../../is-record.ts";
import { pick } from "./seeded.ts";
import { vocabulary } from "./text.ts";

const maxSchemaDepth = 8;

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith("#")) return {};
  let node: unknown = root;
  for (const raw of ref.slice(1).split("/").filter(Boolean)) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    node = isRecord(node) ? node[key] : undefined;
  }
  return node ?? {};
}

function sampleString(schema: Record<string, unknown>, random: () => number): string {
  switch (schema.format) {
    case "date-time":
      return "2024-01-01T00:00:00Z";
    case "date":
      return "2024-01-01";
    case "time":
      return "12:00:00Z";
    case "email":
      return "mock@example.com";
    case "uri":
    case "url":
      return "https://example.com/mock";
    case "uuid": {
      const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
    }
  }
  let text = `${pick(vocabulary, random)} ${pick(vocabulary, random)}`;
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : Number.POSITIVE_INFINITY;
  while (text.length < minLength) text += ` ${pick(vocabulary, random)}`;
  return text.length > maxLength ? text.slice(0, maxLength) : text;
}

function sampleNumber(schema: Record<string, unknown>, random: () => number, integer: boolean): number {
  const num = (value: unknown) => (typeof value === "number" ? value : undefined);
  const exclusiveMin = num(schema.exclusiveMinimum);
  const exclusiveMax = num(schema.exclusiveMaximum);
  let low = num(schema.minimum) ?? (exclusiveMin === undefined ? 0 : exclusiveMin + (integer ? 1 : 1e-6));
  let high = num(schema.maximum) ?? (exclusiveMax === undefined ? low + 100 : exclusiveMax - (integer ? 1 : 1e-6));
  if (integer) {
    low = Math.ceil(low);
    high = Math.floor(high);
  }
  if (high < low) return low;
  const value = low + random() * (high - low);
  return integer ? Math.round(value) : Math.round(value * 100) / 100;
}

/** The schema's types, first the non-null ones (an optional field gets a value rather than null). */
function schemaTypes(schema: Record<string, unknown>): string[] {
  const declared = Array.isArray(schema.type) ? schema.type : typeof schema.type === "string" ? [schema.type] : [];
  const types = declared.filter((type): type is string => typeof type === "string");
  if (types.length > 0) return [...types.filter((type) => type !== "null"), ...types.filter((type) => type === "null")];
  if (isRecord(schema.properties) || Array.isArray(schema.required)) return ["object"];
  if (schema.items !== undefined || schema.prefixItems !== undefined) return ["array"];
  return ["string"];
}

/** A value satisfying `schema` (for the subset of JSON Schema that structured output and tools use). */
export function sampleFromSchema(schema: unknown, random: () => number, root: unknown = schema, depth = 0): unknown {
  if (!isRecord(schema)) return schema === false ? null : {};
  if (typeof schema.$ref === "string") return sampleFromSchema(resolveRef(root, schema.$ref), random, root, depth + 1);
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return pick(schema.enum, random);
  for (const key of ["anyOf", "oneOf"] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      // The first branch, unless it is only `null` and another exists: a value is more useful than null.
      const branch = branches.find((item) => !(isRecord(item) && item.type === "null")) ?? branches[0];
      return sampleFromSchema(branch, random, root, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    // Merge the parts into one schema; their properties and required lists add up.
    const { allOf, ...rest } = schema;
    let merged: Record<string, unknown> = rest;
    const properties: Record<string, unknown> = {};
    const required: unknown[] = [];
    for (const part of [...allOf, rest]) {
      const resolved = isRecord(part) && typeof part.$ref === "string" ? resolveRef(root, part.$ref) : part;
      if (!isRecord(resolved)) continue;
      merged = { ...merged, ...resolved };
      if (isRecord(resolved.properties)) Object.assign(properties, resolved.properties);
      if (Array.isArray(resolved.required)) required.push(...resolved.required);
    }
    const { $ref: _ref, ...withoutRef } = merged;
    return sampleFromSchema({ ...withoutRef, properties, required }, random, root, depth + 1);
  }

  const type = schemaTypes(schema)[0];
  switch (type) {
    case "null":
      return null;
    case "boolean":
      return random() < 0.5;
    case "integer":
    case "number":
      return sampleNumber(schema, random, type === "integer");
    case "string":
      return sampleString(schema, random);
    case "array": {
      const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
      const minItems = typeof schema.minItems === "number" ? schema.minItems : 1;
      const maxItems = typeof schema.maxItems === "number" ? schema.maxItems : Number.POSITIVE_INFINITY;
      const count = Math.min(Math.max(minItems, prefix.length, depth >= maxSchemaDepth ? 0 : 1), maxItems);
      const items: unknown[] = [];
      for (let i = 0; i < count; i++) {
        items.push(sampleFromSchema(prefix[i] ?? schema.items ?? {}, random, root, depth + 1));
      }
      return items;
    }
    default: {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required) ? schema.required.filter((key) => typeof key === "string") : [];
      const object: Record<string, unknown> = {};
      // Past the depth limit only required properties are filled, so recursive schemas terminate.
      const keys = depth >= maxSchemaDepth ? required : [...new Set([...Object.keys(properties), ...required])];
      for (const key of keys) object[key] = sampleFromSchema(properties[key] ?? {}, random, root, depth + 1);
      return object;
    }
  }
}
