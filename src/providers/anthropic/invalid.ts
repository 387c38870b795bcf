/**
 * The 400 every refusal of the request translation throws: one field to blame, named by its path in OpenAI's terms
 * (`messages[2].content[1].image_url.url`), since that is the body the client sent.
 */
import { AppError } from "../../errors.ts";

export function invalid(path: string, problem: string): never {
  const message = `${path}: ${problem}`;
  throw new AppError("invalid_request", message, { errors: [{ path, message }], param: path });
}

/** `messages` + 2 → `messages[2]`; `messages[2]` + "content" → `messages[2].content`. */
export const at = (path: string, key: string | number): string =>
  typeof key === "number" ? `${path}[${key}]` : `${path}.${key}`;
