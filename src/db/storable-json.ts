/**
 * JSON allows every UTF-16 string; PostgreSQL does not. Its `jsonb` refuses `\u0000` ("unsupported Unicode escape
 * sequence") and a lone surrogate such as `\ud800`, and its `text` refuses U+0000. User content (an input, an
 * output, an option) may carry either, and one such row used to fail the whole batched INSERT it rode in.
 *
 * Content is stored faithfully instead: in the JSON text sent to `jsonb`, each such code unit becomes U+FFFF
 * followed by its four hex digits, and a U+FFFF of the content itself becomes U+FFFF "ffff", so the mapping is
 * one-to-one. U+FFFF is a Unicode noncharacter: PostgreSQL stores it, and real text does not use it.
 * `fromStoredJson` undoes it on every value read back.
 */

const escapeMark = "\uffff";

/**
 * In JSON.stringify's output: a `\u0000` or a `\udXXX` escape (it escapes surrogates only when they are unpaired)
 * whose backslash is not itself escaped, or a literal U+FFFF.
 */
const unstorableInJson = /(?<!\\)((?:\\\\)*)\\u(0000|d[89a-f][0-9a-f]{2})|\uffff/gi;
const escapedUnit = /\uffff([0-9a-fA-F]{4})/g;

/** JSON text for a `jsonb` parameter that PostgreSQL accepts and that reads back as `value` through `fromStoredJson`. */
export function toStorableJson(value: unknown): string {
  const json = JSON.stringify(value);
  // The common case costs two scans of the text and no copy.
  if (!json.includes("\\u") && !json.includes(escapeMark)) return json;
  return json.replace(unstorableInJson, (_match, backslashes: string | undefined, hex: string | undefined) =>
    hex === undefined ? "\\uffffffff" : `${backslashes}\\uffff${hex}`,
  );
}

/** The value as it was given to `toStorableJson`. Returns the same object when nothing in it was escaped. */
export function fromStoredJson<T>(value: T): T {
  return decode(value) as T;
}

function decode(value: unknown): unknown {
  if (typeof value === "string") return value.includes(escapeMark) ? unescapeText(value) : value;
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = decode(value[i]);
      if (item !== value[i]) {
        copy ??= value.slice();
        copy[i] = item;
      }
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [key, item] of entries) {
    const decodedKey = key.includes(escapeMark) ? unescapeText(key) : key;
    const decodedItem = decode(item);
    if (decodedKey !== key || decodedItem !== item) {
      copy = {};
      break;
    }
  }
  if (!copy) return value;
  // Rebuilt in the original key order.
  for (const [key, item] of entries) {
    copy[key.includes(escapeMark) ? unescapeText(key) : key] = decode(item);
  }
  return copy;
}

function unescapeText(text: string): string {
  return text.replace(escapedUnit, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** U+0000, or a surrogate without its other half. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is exactly what this looks for.
const unstorableText = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorableTextAll = new RegExp(unstorableText.source, "g");

/**
 * Text PostgreSQL's `text` columns can hold: no U+0000, no unpaired surrogate. What the caller sends into such a
 * column (a model name, metadata, an email) is refused at validation when it is not; see `isStorableText`.
 */
export function isStorableText(text: string): boolean {
  return !unstorableText.test(text);
}

/**
 * For `text` columns filled from an upstream's answer (the model it names): unstorable code units become U+FFFD,
 * as a UTF-8 encoder would make them, so the record of a paid call is never refused for a label.
 */
export function toStorableText(text: string): string {
  return isStorableText(text) ? text : text.replace(unstorableTextAll, "\ufffd");
}
