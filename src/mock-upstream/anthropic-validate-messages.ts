/**
 * What Anthropic answers 400 to in `messages` and `system`: roles, empty content, unknown or malformed blocks,
 * tool results without their tool use (and the reverse), misplaced blocks. Messages name the field the way the API
 * does (`messages.1.content.0.tool_use.input: …`). Stricter than the API in one way on purpose: two messages of the
 * same role in a row are refused (the API merges them), so a translator that forgets to merge them is caught.
 */
import { isRecord } from "../is-record.ts";

type Check = string | undefined;

const blockTypes = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"];
const imageMediaTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/** The fields each block type takes (SDK 1.17.0's `*BlockParam` types): anything else is an extra input. */
const blockFields: Record<string, readonly string[]> = {
  text: ["type", "text", "cache_control", "citations"],
  image: ["type", "source", "cache_control", "transformations"],
  document: ["type", "source", "cache_control", "citations", "context", "title"],
  tool_use: ["type", "id", "name", "input", "cache_control", "caller", "toolset_name"],
  tool_result: ["type", "tool_use_id", "content", "is_error", "cache_control", "toolset_name"],
  thinking: ["type", "thinking", "signature"],
  redacted_thinking: ["type", "data"],
};

const quoted = (values: readonly string[]) => values.map((value) => `'${value}'`).join(", ");

export const extraInputs = (record: Record<string, unknown>, allowed: readonly string[], path: string): Check => {
  const extra = Object.keys(record).find((key) => !allowed.includes(key));
  return extra === undefined ? undefined : `${path}${extra}: Extra inputs are not permitted`;
};

/** Pydantic's wording for a discriminated union whose `type` matches none of its members. */
export function tagError(path: string, value: unknown, expected: readonly string[]): string {
  if (typeof value !== "string") return `${path}: Unable to extract tag using discriminator 'type'`;
  return `${path}: Input tag '${value}' found using 'type' does not match any of the expected tags: ${quoted(expected)}`;
}

export function checkCacheControl(value: unknown, path: string): Check {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) return `${path}: Input should be a valid dictionary`;
  if (value.type !== "ephemeral") return tagError(path, value.type, ["ephemeral"]);
  if (value.ttl !== undefined && value.ttl !== "5m" && value.ttl !== "1h") {
    return `${path}.ephemeral.ttl: Input should be '5m' or '1h'`;
  }
  return extraInputs(value, ["type", "ttl"], `${path}.ephemeral.`);
}

const requireString = (record: Record<string, unknown>, key: string, path: string): Check => {
  if (record[key] === undefined) return `${path}${key}: Field required`;
  return typeof record[key] === "string" ? undefined : `${path}${key}: Input should be a valid string`;
};

/** A text block, in messages, `system` or a tool result: non-empty text. */
export function checkTextBlock(block: Record<string, unknown>, path: string, where: string): Check {
  return (
    requireString(block, "text", path) ??
    (block.text === "" ? `${where}: text content blocks must be non-empty` : undefined) ??
    checkCacheControl(block.cache_control, `${path}cache_control`)
  );
}

function checkSource(block: Record<string, unknown>, path: string, kinds: Record<string, readonly string[]>): Check {
  const source = block.source;
  if (source === undefined) return `${path}source: Field required`;
  if (!isRecord(source)) return `${path}source: Input should be a valid dictionary`;
  const fields = typeof source.type === "string" ? kinds[source.type] : undefined;
  if (!fields) return tagError(`${path}source`, source.type, Object.keys(kinds));
  const sourcePath = `${path}source.${source.type}.`;
  for (const field of fields) {
    const missing = requireString(source, field, sourcePath);
    if (missing && !(field === "content" && Array.isArray(source.content))) return missing;
  }
  return extraInputs(source, ["type", ...fields], sourcePath);
}

/** API version 2026-10-21 refuses what 2023-06-01 let through (citations sent back by the user, documents in turns). */
export const isVersion2026 = (version: string) => version >= "2026-10-21";

function checkBlockFields(
  block: Record<string, unknown>,
  type: string,
  path: string,
  role: string,
  version: string,
): Check {
  switch (type) {
    case "text":
      if (isVersion2026(version) && role === "user" && Array.isArray(block.citations) && block.citations.length > 0) {
        return `${path}citations: citations are not accepted in user messages`;
      }
      return checkTextBlock(block, path, "messages");
    case "image": {
      const invalid = checkSource(block, path, { base64: ["media_type", "data"], url: ["url"], file: ["file_id"] });
      if (invalid) return invalid;
      const source = block.source as Record<string, unknown>;
      if (source.type === "base64" && !imageMediaTypes.includes(String(source.media_type))) {
        return `${path}source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`;
      }
      return undefined;
    }
    case "document":
      return checkSource(block, path, {
        base64: ["media_type", "data"],
        text: ["media_type", "data"],
        content: ["content"],
        url: ["url"],
        file: ["file_id"],
      });
    case "tool_use":
      if (!isRecord(block.input)) return `${path}input: Input should be a valid dictionary`;
      return requireString(block, "id", path) ?? requireString(block, "name", path);
    case "tool_result": {
      const content = block.content;
      if (content !== undefined && typeof content !== "string" && !Array.isArray(content)) {
        return `${path}content: Input should be a valid string or a list of content blocks`;
      }
      if (block.is_error !== undefined && typeof block.is_error !== "boolean") {
        return `${path}is_error: Input should be a valid boolean`;
      }
      for (const [index, part] of (Array.isArray(content) ? content : []).entries()) {
        if (!isRecord(part)) return `${path}content.${index}: Input should be a valid dictionary`;
        if (part.type === "text") {
          const invalid = checkTextBlock(part, `${path}content.${index}.text.`, "messages");
          if (invalid) return invalid;
        }
      }
      return requireString(block, "tool_use_id", path);
    }
    case "thinking":
      return requireString(block, "thinking", path) ?? requireString(block, "signature", path);
    case "redacted_thinking":
      return requireString(block, "data", path);
  }
  return undefined;
}

/** Which role a block type belongs to (tool results come from the user, tool uses from the assistant). */
const onlyIn: Record<string, string> = { tool_result: "user", tool_use: "assistant" };

function checkContent(content: unknown, role: string, at: number, version: string): Check {
  if (typeof content === "string") return undefined;
  if (!Array.isArray(content))
    return `messages.${at}.content: Input should be a valid string or a list of content blocks`;
  for (const [index, block] of content.entries()) {
    const path = `messages.${at}.content.${index}`;
    if (!isRecord(block)) return `${path}: Input should be a valid dictionary`;
    const type = block.type;
    if (typeof type !== "string" || !blockTypes.includes(type)) return tagError(path, type, blockTypes);
    const fieldsPath = `${path}.${type}.`;
    const invalid =
      extraInputs(block, blockFields[type] ?? [], fieldsPath) ??
      checkBlockFields(block, type, fieldsPath, role, version) ??
      checkCacheControl(block.cache_control, `${fieldsPath}cache_control`);
    if (invalid) return invalid;
    const home = onlyIn[type] ?? (type === "document" && isVersion2026(version) ? "user" : undefined);
    if (home !== undefined && home !== role) return `${path}: \`${type}\` blocks can only be in \`${home}\` messages`;
  }
  return undefined;
}

const isEmpty = (content: unknown) => content === "" || (Array.isArray(content) && content.length === 0);

const toolUseIds = (content: unknown): string[] =>
  Array.isArray(content)
    ? content.flatMap((block) => (isRecord(block) && block.type === "tool_use" ? [String(block.id)] : []))
    : [];

/** Each tool result answers a tool use of the message right before; each tool use is answered in the next one. */
function checkToolPairs(messages: readonly Record<string, unknown>[]): Check {
  for (const [at, message] of messages.entries()) {
    const previous = at > 0 ? toolUseIds(messages[at - 1]?.content) : [];
    for (const [index, block] of (Array.isArray(message.content) ? message.content : []).entries()) {
      if (!isRecord(block) || block.type !== "tool_result" || previous.includes(String(block.tool_use_id))) continue;
      return `messages.${at}.content.${index}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(block.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
    }
    const next = messages[at + 1];
    const uses = toolUseIds(message.content);
    if (next === undefined || uses.length === 0) continue;
    const answered = Array.isArray(next.content)
      ? next.content.flatMap((block) =>
          isRecord(block) && block.type === "tool_result" ? [String(block.tool_use_id)] : [],
        )
      : [];
    const unanswered = uses.filter((id) => !answered.includes(id));
    if (unanswered.length > 0) {
      return `messages.${at}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${unanswered.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
    }
  }
  return undefined;
}

/** The final assistant message (a prefill) may be empty but may not end with whitespace. */
function trailingWhitespace(message: Record<string, unknown>): boolean {
  const content = message.content;
  const last = Array.isArray(content) ? content.at(-1) : content;
  const text = typeof last === "string" ? last : isRecord(last) && last.type === "text" ? last.text : undefined;
  return typeof text === "string" && /\s$/.test(text);
}

export function checkMessages(value: unknown, version: string): Check {
  if (value === undefined) return "messages: Field required";
  if (!Array.isArray(value)) return "messages: Input should be a valid list";
  if (value.length === 0) return "messages: at least one message is required";
  const messages: Record<string, unknown>[] = [];
  for (const [at, message] of value.entries()) {
    if (!isRecord(message)) return `messages.${at}: Input should be a valid dictionary`;
    const role = message.role;
    if (role === undefined) return `messages.${at}.role: Field required`;
    if (role === "system") {
      return `messages.${at}.role: Input should be 'user' or 'assistant' (the system prompt is the top-level \`system\` parameter)`;
    }
    if (role !== "user" && role !== "assistant") return `messages.${at}.role: Input should be 'user' or 'assistant'`;
    const invalid =
      extraInputs(message, ["role", "content"], `messages.${at}.`) ??
      (message.content === undefined ? `messages.${at}.content: Field required` : undefined) ??
      checkContent(message.content, role, at, version);
    if (invalid) return invalid;
    if (at > 0 && messages[at - 1]?.role === role) {
      return `messages: roles must alternate between "user" and "assistant", but found multiple "${role}" roles in a row`;
    }
    const finalAssistant = at === value.length - 1 && role === "assistant";
    if (isEmpty(message.content) && !finalAssistant) {
      return `messages.${at}: all messages must have non-empty content except for the optional final assistant message`;
    }
    if (finalAssistant && trailingWhitespace(message)) {
      return "messages: final assistant content cannot end with trailing whitespace";
    }
    messages.push(message);
  }
  return checkToolPairs(messages);
}

export function checkSystem(value: unknown): Check {
  if (value === undefined || typeof value === "string") return undefined;
  if (!Array.isArray(value)) return "system: Input should be a valid string or a list of text blocks";
  for (const [index, block] of value.entries()) {
    const path = `system.${index}`;
    if (!isRecord(block)) return `${path}: Input should be a valid dictionary`;
    if (block.type !== "text") return tagError(path, block.type, ["text"]);
    const invalid =
      extraInputs(block, blockFields.text ?? [], `${path}.`) ?? checkTextBlock(block, `${path}.`, "system");
    if (invalid) return invalid;
  }
  return undefined;
}

/** The `cache_control` markers a request carries, wherever they are (the API takes at most four). */
export function countCacheMarkers(body: Record<string, unknown>): number {
  const marked = (value: unknown) => isRecord(value) && isRecord(value.cache_control);
  let count = isRecord(body.cache_control) ? 1 : 0;
  for (const tool of Array.isArray(body.tools) ? body.tools : []) if (marked(tool)) count++;
  for (const block of Array.isArray(body.system) ? body.system : []) if (marked(block)) count++;
  for (const message of Array.isArray(body.messages) ? body.messages : []) {
    const content = isRecord(message) && Array.isArray(message.content) ? message.content : [];
    for (const block of content) if (marked(block)) count++;
  }
  return count;
}
