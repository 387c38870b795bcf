// Server-sent events read from a fetch body (EventSource cannot POST): the service streams `delta` events, then one
// `done` or `error` event.

export interface ServerEvent {
  event: string;
  data: string;
}

/** Yields each event as it completes; a stream cut mid-event drops that partial event. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // stream: true keeps a character split across two chunks whole.
      buffer += decoder.decode(value, { stream: true });
      // A trailing "\r" may be the first half of "\r\n": wait for the next chunk to tell.
      const carry = buffer.endsWith("\r") ? "\r" : "";
      const lines = (carry ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
      // The last piece may be half a line: keep it for the next chunk.
      buffer = (lines.pop() ?? "") + carry;
      for (const line of lines) {
        if (line === "") {
          if (data.length > 0) yield { event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
    }
  } finally {
    reader.releaseLock();
  }
}
