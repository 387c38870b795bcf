/**
 * OpenAI content parts → Anthropic content blocks: text, images (data: URLs as base64 sources, http(s) URLs as url
 * sources) and the `{type: "anthropic", block}` extension part, which carries a block only Anthropic has (a
 * document, a search result) from the Anthropic-compatible entry point and goes out as it came.
 */
import type {
  CacheControlEphemeral,
  ContentBlockParam,
  ImageBlockParam,
  TextBlockParam,
  ToolResultBlockParam,
} from "@anthropic-ai/sdk/resources/messages";
import { isRecord } from "../../is-record.ts";
import { at, invalid } from "./invalid.ts";

type Json = Record<string, unknown>;
type ToolResultContent = Exclude<ToolResultBlockParam["content"], string | undefined>;
type ImageMediaType = "image/jpeg" | "image/png" | "image/gif" | "image/webp";

const imageMediaTypes: readonly string[] = ["image/jpeg", "image/png", "image/gif", "image/webp"];
const isImageMediaType = (value: string): value is ImageMediaType => imageMediaTypes.includes(value);

/** The blocks of a user or assistant message's `content` (a string, parts, or null). */
export function contentBlocks(content: unknown, path: string): ContentBlockParam[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return textBlocks(content);
  if (!Array.isArray(content)) invalid(path, "must be a string, an array of content parts or null");
  return content.flatMap((part, j) => partBlocks(part, at(path, j)));
}

/** A tool message's `content` as a `tool_result`'s: a string, or text and image blocks; undefined when empty. */
export function toolResultContent(content: unknown, path: string): ToolResultBlockParam["content"] {
  if (typeof content === "string") return content === "" ? undefined : content;
  const blocks = contentBlocks(content, path);
  // Anthropic checks that each block is one a tool_result may hold; text and images are, and so are documents.
  return blocks.length ? (blocks as ToolResultContent) : undefined;
}

/** The text blocks of a system or developer message; only text can go into Anthropic's `system`. */
export function systemBlocks(content: unknown, path: string): TextBlockParam[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return textBlocks(content);
  if (!Array.isArray(content)) invalid(path, "must be a string or an array of text parts");
  return content.flatMap((part, j) => {
    const partPath = at(path, j);
    if (isRecord(part) && part.type !== "text" && part.type !== "anthropic") {
      invalid(at(partPath, "type"), "a system or developer message can only hold text for Anthropic");
    }
    const blocks = partBlocks(part, partPath);
    if (!blocks.every((block): block is TextBlockParam => block.type === "text")) {
      invalid(at(partPath, "block"), "must be a text block in a system or developer message");
    }
    return blocks;
  });
}

/** Anthropic refuses an empty text block, so empty text is no block at all. */
function textBlocks(text: string, cacheControl?: CacheControlEphemeral): TextBlockParam[] {
  if (text === "") return [];
  return [{ type: "text", text, ...(cacheControl && { cache_control: cacheControl }) }];
}

function partBlocks(part: unknown, path: string): ContentBlockParam[] {
  if (!isRecord(part)) invalid(path, "must be a content part object");
  switch (part.type) {
    case "text":
      if (typeof part.text !== "string") invalid(at(path, "text"), "must be a string");
      return textBlocks(part.text, cacheControlOf(part, path));
    case "image_url":
      return [imageBlock(part, path)];
    case "anthropic":
      return [extensionBlock(part, path)];
    default:
      return invalid(
        at(path, "type"),
        `a content part of type ${JSON.stringify(part.type)} has no Anthropic equivalent (text, image_url and the anthropic extension part can be sent)`,
      );
  }
}

/** An extension `cache_control` on a part (or a tool), kept for Anthropic's prompt caching. */
export function cacheControlOf(owner: Json, path: string): CacheControlEphemeral | undefined {
  const value = owner.cache_control;
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value) || typeof value.type !== "string") invalid(at(path, "cache_control"), "must be an object");
  return value as unknown as CacheControlEphemeral;
}

function imageBlock(part: Json, path: string): ImageBlockParam {
  const imageUrl = part.image_url;
  const urlPath = at(at(path, "image_url"), "url");
  // OpenAI's shape is `{url, detail}`; a bare string is what some clients send, and means the same.
  const url = isRecord(imageUrl) ? imageUrl.url : imageUrl;
  if (typeof url !== "string") invalid(urlPath, "must be a string");
  const cacheControl = cacheControlOf(part, path);
  return { type: "image", source: imageSource(url, urlPath), ...(cacheControl && { cache_control: cacheControl }) };
}

function imageSource(url: string, path: string): ImageBlockParam["source"] {
  if (url.startsWith("data:")) return base64Source(url, path);
  if (/^https?:\/\//i.test(url)) return { type: "url", url };
  return invalid(path, "must be a data: URL with base64 data or an http(s) URL");
}

/** `data:<media type>[;<parameter>];base64,<data>`, read without a regex over what may be megabytes of data. */
function base64Source(url: string, path: string): ImageBlockParam["source"] {
  const comma = url.indexOf(",");
  const header = comma < 0 ? [] : url.slice("data:".length, comma).split(";");
  if (header.length < 2 || header.at(-1)?.toLowerCase() !== "base64") {
    invalid(path, "a data: URL must carry base64 data (data:<media type>;base64,<data>)");
  }
  // image/jpg is not a registered type but is what many clients write for JPEG.
  const given = (header[0] ?? "").trim().toLowerCase();
  const mediaType = given === "image/jpg" ? "image/jpeg" : given;
  if (!isImageMediaType(mediaType)) {
    invalid(
      path,
      `Anthropic takes image/jpeg, image/png, image/gif or image/webp images, not ${JSON.stringify(given)}`,
    );
  }
  return { type: "base64", media_type: mediaType, data: url.slice(comma + 1) };
}

/** `{type: "anthropic", block}`: the block goes out unchanged; Anthropic validates it. */
function extensionBlock(part: Json, path: string): ContentBlockParam {
  const block = part.block;
  if (!isRecord(block) || typeof block.type !== "string") {
    invalid(at(path, "block"), "must be an Anthropic content block (an object with a type)");
  }
  return block as unknown as ContentBlockParam;
}
