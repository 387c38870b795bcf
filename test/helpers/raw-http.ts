import { connect } from "node:net";

/**
 * HTTP/1.1 over a bare socket, for requests an HTTP client refuses to send (oversize or invalid headers, unknown
 * `Expect`s, bodies over the limit written in one go) and for watching how the server ends the connection.
 */
export interface RawAnswer {
  /** The status code of every answer head in order: a 100 Continue comes before the final answer. */
  statuses: number[];
  /** The final answer's status, headers (lowercase names) and body (parsed JSON when it is JSON). */
  status: number;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answer fields freely and assert on them.
  body: any;
  /** Everything the server sent, as latin1. */
  text: string;
  /** The code of the error the client's socket met (EPIPE, ECONNRESET), if any. */
  error: string | undefined;
}

export interface RawRequestOptions {
  /**
   * Write the whole request before reading anything, as a blocking client does: if the server closes while the
   * request is still being written, the client meets EPIPE and never reads the answer.
   */
  readAfterWrite?: boolean;
}

/** Sends `request` on a new connection and resolves once the connection has closed, with what came back. */
export function rawRequest(url: string, request: string | Buffer, options: RawRequestOptions = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let error: string | undefined;
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
    });
    socket.on("close", () => resolve({ ...parseAnswers(Buffer.concat(chunks)), error }));
    if (options.readAfterWrite) {
      socket.pause();
      socket.write(request, () => socket.resume());
    } else {
      socket.write(request);
    }
  });
}

function parseAnswers(received: Buffer): Omit<RawAnswer, "error"> {
  const text = received.toString("latin1");
  const statuses: number[] = [];
  let rest = received;
  let headers: Record<string, string> = {};
  let bodyBytes: Buffer = Buffer.alloc(0);
  for (;;) {
    const headEnd = rest.indexOf("\r\n\r\n");
    if (headEnd < 0) break;
    const [statusLine = "", ...lines] = rest.subarray(0, headEnd).toString("latin1").split("\r\n");
    const status = Number(statusLine.split(" ")[1]);
    statuses.push(status);
    headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    rest = rest.subarray(headEnd + 4);
    if (status >= 200) {
      const length = Number(headers["content-length"] ?? rest.length);
      bodyBytes = rest.subarray(0, length);
      break;
    }
  }
  const bodyText = bodyBytes.toString("utf8");
  let body: unknown = bodyText;
  try {
    body = bodyText ? JSON.parse(bodyText) : undefined;
  } catch {
    // not JSON: the text is the body
  }
  return { statuses, status: statuses.at(-1) ?? 0, headers, body, text };
}
