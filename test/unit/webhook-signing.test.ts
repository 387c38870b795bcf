import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { createSecretBox, newWebhookSecret, SecretBoxError, signatureHeaders } from "../../src/webhooks/signing.ts";

const body = JSON.stringify({ type: "request.completed", data: { id: "req_1", output: "héllo ✓" } });

describe("newWebhookSecret", () => {
  test("whsec_ and base64 of 32 random bytes, accepted by the library", () => {
    const secret = newWebhookSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(secret.slice("whsec_".length), "base64").length, 32);
    assert.doesNotThrow(() => new Webhook(secret));
    assert.notEqual(newWebhookSecret(), secret);
  });
});

describe("signatureHeaders", () => {
  test("a receiver holding the secret verifies the delivery", () => {
    const secret = newWebhookSecret();
    const now = new Date();
    const headers = signatureHeaders([secret], "msg_1", now, body);
    assert.equal(headers["webhook-id"], "msg_1");
    assert.equal(headers["webhook-timestamp"], String(Math.floor(now.getTime() / 1000)));
    assert.match(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
  });

  test("with two secrets (rotation), a receiver knowing either one verifies", () => {
    const oldSecret = newWebhookSecret();
    const newSecret = newWebhookSecret();
    const headers = signatureHeaders([oldSecret, newSecret], "msg_2", new Date(), body);
    const parts = headers["webhook-signature"].split(" ");
    assert.equal(parts.length, 2, "two signatures separated by a single space");
    for (const part of parts) assert.match(part, /^v1,/);
    assert.doesNotThrow(() => new Webhook(oldSecret).verify(body, headers));
    assert.doesNotThrow(() => new Webhook(newSecret).verify(body, headers));
    assert.throws(() => new Webhook(newWebhookSecret()).verify(body, headers), WebhookVerificationError);
  });

  test("a tampered body, id or timestamp fails verification", () => {
    const secret = newWebhookSecret();
    const receiver = new Webhook(secret);
    const headers = signatureHeaders([secret], "msg_3", new Date(), body);
    assert.throws(() => receiver.verify(body.replace("req_1", "req_2"), headers), WebhookVerificationError);
    assert.throws(() => receiver.verify(body, { ...headers, "webhook-id": "msg_4" }), WebhookVerificationError);
    const earlier = String(Number(headers["webhook-timestamp"]) - 1);
    assert.throws(() => receiver.verify(body, { ...headers, "webhook-timestamp": earlier }), WebhookVerificationError);
  });

  test("no secret is a programming error", () => {
    assert.throws(() => signatureHeaders([], "msg_5", new Date(), body), RangeError);
  });
});

describe("createSecretBox", () => {
  const key = randomBytes(32);

  /** The sealed text with one byte of one part flipped (decoding and re-encoding, so the change is real). */
  function flip(sealed: string, partIndex: number): string {
    const parts = sealed.split(".");
    const bytes = Buffer.from(parts[partIndex] ?? "", "base64url");
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    parts[partIndex] = bytes.toString("base64url");
    return parts.join(".");
  }

  test("round trip, in the versioned format, with a new IV every time", () => {
    const box = createSecretBox(key);
    const secret = newWebhookSecret();
    const sealed = box.seal(secret);
    assert.match(sealed, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    assert.ok(!sealed.includes(secret.slice(6)), "the secret does not appear in the sealed text");
    assert.equal(box.open(sealed), secret);
    assert.notEqual(box.seal(secret), sealed);
    assert.equal(box.open(box.seal("")), "");
    assert.equal(box.open(box.seal("héllo ✓")), "héllo ✓");
  });

  test("a box made with the same key opens it", () => {
    const sealed = createSecretBox(key).seal("s3cret");
    assert.equal(createSecretBox(Buffer.from(key)).open(sealed), "s3cret");
  });

  test("tampering with the IV, the tag or the ciphertext is detected", () => {
    const box = createSecretBox(key);
    const sealed = box.seal("whsec_something");
    for (const part of [1, 2, 3]) {
      assert.throws(() => box.open(flip(sealed, part)), SecretBoxError, `part ${part}`);
    }
    // A non-canonical spelling of the same bytes is refused too: the text itself cannot be altered.
    const parts = sealed.split(".");
    assert.throws(() => box.open([...parts.slice(0, 3), `${parts[3]}=`].join(".")), SecretBoxError);
  });

  test("another key cannot open it", () => {
    const sealed = createSecretBox(key).seal("whsec_something");
    assert.throws(() => createSecretBox(randomBytes(32)).open(sealed), SecretBoxError);
  });

  test("foreign or malformed text is refused", () => {
    const box = createSecretBox(key);
    const sealed = box.seal("x");
    for (const text of [
      "",
      "whsec_abc",
      "v1.a.b.c",
      sealed.replace(/^v1/, "v2"),
      `${sealed}.extra`,
      sealed.slice(0, -1),
    ]) {
      assert.throws(() => box.open(text), SecretBoxError, JSON.stringify(text));
    }
  });

  test("a key that is not 32 bytes is rejected", () => {
    assert.throws(() => createSecretBox(randomBytes(16)), RangeError);
    assert.throws(() => createSecretBox(randomBytes(33)), RangeError);
    assert.throws(() => createSecretBox(Buffer.alloc(0)), RangeError);
  });
});
