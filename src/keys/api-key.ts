import { createHash, randomInt, timingSafeEqual } from "node:crypto";

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const apiKeyPrefix = "arh_";
const secretLength = 40;
/** `arh_` and the first 8 secret characters: enough to recognise a key in a list, far too little to guess it. */
const displayPrefixLength = apiKeyPrefix.length + 8;

/** A new key: `arh_` + 40 base62 characters (~238 bits), drawn without modulo bias. */
export function generateApiKey(): string {
  let secret = "";
  for (let i = 0; i < secretLength; i++) secret += base62[randomInt(62)];
  return apiKeyPrefix + secret;
}

/** Keys are high-entropy, so a plain SHA-256 is a safe lookup hash (no salt or slow hash needed). */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function displayPrefix(key: string): string {
  return key.slice(0, displayPrefixLength);
}

const keyShape = /^arh_[0-9A-Za-z]{32,128}$/;

export function looksLikeApiKey(value: string): boolean {
  return keyShape.test(value);
}

/** Constant-time comparison for the operator's key, which is compared as given rather than looked up. */
export function safeEqual(a: string, b: string): boolean {
  const left = createHash("sha256").update(a).digest();
  const right = createHash("sha256").update(b).digest();
  return timingSafeEqual(left, right);
}
