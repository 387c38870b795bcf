import { AppError } from "../errors.ts";
/**
 * The `data` of each server-sent event, as the bytes arrive (never the whole body at once). Comments and other
 * fields (`event:`, `id:`, `retry:`) are skipped; multi-line data is joined with newlines, as the SSE spec says.
 */
export async function* readSseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  for await (const bytes of body) {
    buffer += decoder.decode(bytes, { stream: true });
    let start = 0;
    for (let newline = buffer.indexOf("\n"); newline !== -1; newline = buffer.indexOf("\n", start)) {
      let line = buffer.slice(start, newline);
      start = newline + 1;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (data.length > 0) yield data.join("\n");
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.charCodeAt(5) === 32 ? 6 : 5));
      }
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer.startsWith("data:")) data.push(buffer.slice(buffer.charCodeAt(5) === 32 ? 6 : 5));
  if (data.length > 0) yield data.join("\n");
}

/** One event's data as JSON; an upstream that sends anything else has failed (502). */
export function parseEventData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new AppError("upstream_error", "the upstream sent invalid JSON in the stream");
  }
}
