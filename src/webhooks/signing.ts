/**
 * Signing webhook deliveries (the Standard Webhooks specification, through its reference library) and keeping the
 * signing secrets encrypted at rest. The secrets must be readable again to sign, so they are sealed with a key of
 * the service's (AES-256-GCM), not hashed like API keys.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";

export interface SignatureHeaders {
  "webhook-id": string;
  /** Unix seconds. */
  "webhook-timestamp": string;
  /** `v1,<base64 HMAC-SHA256>`, one per secret, separated by a single space. */
  "webhook-signature": string;
}

/** A new signing secret: `whsec_` + base64 of 32 random bytes, the form `new Webhook(secret)` accepts. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/**
 * The headers of one delivery, signed with every given secret. While a secret is rotated both the old and the new
 * one are given: the receiver accepts a message when any signature matches, so one holding either secret verifies
 * it. Throws on an empty list or a malformed secret (a bug, not a delivery failure).
 */
export function signatureHeaders(
  secrets: string[],
  messageId: string,
  timestamp: Date,
  body: string,
): SignatureHeaders {
  if (secrets.length === 0) throw new RangeError("signatureHeaders needs at least one secret");
  const signatures = secrets.map((secret) => new Webhook(secret).sign(messageId, timestamp, body));
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
    "webhook-signature": signatures.join(" "),
  };
}

export interface SecretBox {
  /** `v1.<iv>.<tag>.<ciphertext>`, each part base64url; a new random IV every time. */
  seal(plain: string): string;
  /** The sealed text's plaintext; throws SecretBoxError when it was altered, sealed with another key, or malformed. */
  open(sealed: string): string;
}

export class SecretBoxError extends Error {
  override name = "SecretBoxError";
}

const keyBytes = 32;
const ivBytes = 12;
const tagBytes = 16;
const version = "v1";

/** Decodes one base64url part, refusing any text that is not the canonical encoding of its bytes. */
function decodePart(part: string): Buffer | undefined {
  const bytes = Buffer.from(part, "base64url");
  return bytes.toString("base64url") === part ? bytes : undefined;
}

/** Seals and opens short secrets with AES-256-GCM under `key` (32 bytes, e.g. from the environment). */
export function createSecretBox(key: Buffer): SecretBox {
  if (!Buffer.isBuffer(key) || key.length !== keyBytes) {
    throw new RangeError(`the secret box key must be ${keyBytes} bytes`);
  }
  // A copy: a caller reusing or zeroing its buffer must not change the box's key.
  const ownKey = Buffer.from(key);

  return {
    seal(plain) {
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv("aes-256-gcm", ownKey, iv);
      const ciphertext = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [version, iv, tag, ciphertext]
        .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
        .join(".");
    },

    open(sealed) {
      const parts = sealed.split(".");
      const [tagged, ivText, tagText, ciphertextText] = parts;
      if (parts.length !== 4 || tagged !== version || ivText === undefined || tagText === undefined) {
        throw new SecretBoxError("not a sealed secret of this version");
      }
      const iv = decodePart(ivText);
      const tag = decodePart(tagText);
      const ciphertext = decodePart(ciphertextText ?? "");
      if (iv?.length !== ivBytes || tag?.length !== tagBytes || ciphertext === undefined) {
        throw new SecretBoxError("malformed sealed secret");
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", ownKey, iv, { authTagLength: tagBytes });
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
      } catch {
        throw new SecretBoxError("sealed secret could not be opened: altered, or sealed with another key");
      }
    },
  };
}
