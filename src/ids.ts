import { randomBytes } from "node:crypto";

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

/**
 * Ids are a prefix, a 9-character base36 millisecond timestamp (sortable until the year 5188) and 12 random
 * base36 characters. Time-ordered ids keep the primary-key index append-mostly.
 */
export function newId(prefix: "req" | "usr" | "key"): string {
  const time = Date.now().toString(36).padStart(9, "0");
  const bytes = randomBytes(12);
  let random = "";
  for (const byte of bytes) random += alphabet[byte % 36];
  return `${prefix}_${time}${random}`;
}

const idPattern = /^(req|usr|key)_[0-9a-z]{21}$/;

export function isId(prefix: "req" | "usr" | "key", value: string): boolean {
  return idPattern.test(value) && value.startsWith(`${prefix}_`);
}
