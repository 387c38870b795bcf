/**
 * Opaque page cursors: base64url of a few `|`-separated parts. The repositories decide what the parts are; this
 * module only packs them and rejects anything that was not packed here, so a tampered or truncated cursor becomes
 * an `InvalidCursorError` (the HTTP layer answers 400 naming `cursor`) instead of a database error.
 */

/** A `cursor` that this service did not hand out, or that no longer decodes. */
export class InvalidCursorError extends Error {
  /** The request field at fault, for the 400 answer. */
  readonly field = "cursor";

  constructor(message = "cursor is not a cursor returned by a previous page") {
    super(message);
    this.name = "InvalidCursorError";
  }
}

const base64url = /^[A-Za-z0-9_-]+$/;

export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(parts.join("|"), "utf8").toString("base64url");
}

/** The parts, exactly `count` of them, each matching `patterns[i]`; throws `InvalidCursorError` otherwise. */
export function decodeCursor(cursor: string, patterns: readonly RegExp[]): string[] {
  // Node's base64url decoder skips characters it does not know, so check the alphabet first.
  if (cursor.length === 0 || cursor.length > 512 || !base64url.test(cursor)) throw new InvalidCursorError();
  const parts = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  if (parts.length !== patterns.length) throw new InvalidCursorError();
  parts.forEach((part, i) => {
    if (!patterns[i]?.test(part)) throw new InvalidCursorError();
  });
  return parts;
}

/** A row id inside a cursor: the shape `newId` produces, loosely (tests and imports may use other suffixes). */
export const cursorIdPattern = /^[A-Za-z0-9_-]{1,100}$/;

/** Page sizes are 1..100; the HTTP layer validates, this only keeps a stray value from meaning "everything". */
export function clampPageLimit(limit: number): number {
  return Math.min(100, Math.max(1, Math.trunc(limit) || 1));
}
