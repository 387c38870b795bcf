import { AppError } from "../../errors.ts";
import { isRecord } from "../../is-record.ts";

/**
 * Readers for the untrusted body of POST /v1/messages. Each takes the value and its path in Anthropic's terms
 * (`messages.1.content.0.source.data`) and either returns it typed or throws the 400 that names that path, so a
 * client sees the same kind of message Anthropic itself would give ("<path>: <problem>").
 */

export type Json = Record<string, unknown>;

export function invalid(path: string, problem: string): never {
  const message = path ? `${path}: ${problem}` : problem;
  throw new AppError("invalid_request", message, { errors: [{ path, message: problem }], param: path });
}

/** `messages` + 1 → `messages.1`. */
export const at = (path: string, key: string | number): string => (path ? `${path}.${key}` : String(key));

/** Absent and null are the same to an optional field: some clients send `"system": null`. */
export const isAbsent = (value: unknown): value is undefined | null => value === undefined || value === null;

export function record(value: unknown, path: string): Json {
  if (isAbsent(value)) invalid(path, "Field required");
  if (!isRecord(value)) invalid(path, "Input should be an object");
  return value;
}

export function string(value: unknown, path: string): string {
  if (isAbsent(value)) invalid(path, "Field required");
  if (typeof value !== "string") invalid(path, "Input should be a string");
  return value;
}

export function array(value: unknown, path: string): unknown[] {
  if (isAbsent(value)) invalid(path, "Field required");
  if (!Array.isArray(value)) invalid(path, "Input should be a list");
  return value;
}

export function optionalString(value: unknown, path: string): string | undefined {
  return isAbsent(value) ? undefined : string(value, path);
}

export function optionalNumber(value: unknown, path: string): number | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) invalid(path, "Input should be a number");
  return value;
}

export function optionalBoolean(value: unknown, path: string): boolean | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value !== "boolean") invalid(path, "Input should be a boolean");
  return value;
}

export function optionalRecord(value: unknown, path: string): Json | undefined {
  return isAbsent(value) ? undefined : record(value, path);
}

/** A content block: an object with a string `type`, the one thing every block kind shares. */
export function block(value: unknown, path: string): Json & { type: string } {
  const found = record(value, path);
  const type = string(found.type, at(path, "type"));
  return { ...found, type };
}

/**
 * The keys of `value` outside `known`, or undefined when there are none: what Anthropic has and OpenAI has no field
 * for, kept so the Anthropic translator can put it back.
 */
export function extras(value: Json, known: readonly string[]): Json | undefined {
  // null is "not set" too: a response block echoed back as a param carries `citations: null` and the like.
  const rest = Object.entries(value).filter(([key, field]) => !known.includes(key) && !isAbsent(field));
  return rest.length ? Object.fromEntries(rest) : undefined;
}
