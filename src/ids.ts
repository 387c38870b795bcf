import { randomFillSync } from "node:crypto";

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
const randomLength = 12;

// Random bytes are drawn in blocks: one call into the CSPRNG per 340 ids instead of one per id.
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** A random base36 string (about 5.2 bits per character) for tokens that need no prefix nor time order. */
export function randomToken(length: number): string {
  if (offset + length > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  let random = "";
  for (let i = 0; i < length; i++) random += alphabet[pool[offset + i]! % 36];
  offset += length;
  return random;
}

/**
 * Ids are a prefix, a 9-character base36 millisecond timestamp (sortable until the year 5188) and 12 random
 * base36 characters. Time-ordered ids keep the primary-key index append-mostly.
 */
export function newId(prefix: "req" | "usr" | "key" | "ses" | "bat" | "whk" | "msg"): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, "0")}${randomToken(randomLength)}`;
}

const idPattern = /^(req|usr|key|bat|whk|msg)_[0-9a-z]{21}$/;

export function isId(prefix: "req" | "usr" | "key" | "bat" | "whk" | "msg", value: string): boolean {
  return idPattern.test(value) && value.startsWith(`${prefix}_`);
}
