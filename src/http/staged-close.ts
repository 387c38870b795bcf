import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";

/**
 * How much and how long a connection is still read after its last answer. Closing a socket while the client's bytes
 * are unread makes the kernel send a reset, which can reach the client before it has read the answer, and a client
 * still writing its body gets EPIPE instead of the answer (RFC 9112 §9.6).
 */
export interface LingerBounds {
  maxBytes: number;
  maxMs: number;
}

/** 8 MiB or 2 s, whichever comes first: the rest of a body several times the default limit, on any sane link. */
const defaultLingerBounds: LingerBounds = { maxBytes: 8 * 1024 * 1024, maxMs: 2_000 };

/**
 * Closes a connection in stages: half-closes it after what was written, reads and discards what the client still
 * sends until it closes its side, `untilEndOf` ends (the request whose body was refused), or the bounds run out,
 * then closes it.
 */
export function closeInStages(
  socket: Socket,
  bounds: LingerBounds = defaultLingerBounds,
  untilEndOf?: IncomingMessage,
): void {
  if (socket.destroyed) return;
  const startBytes = socket.bytesRead;
  const startedAt = Date.now();
  const close = () => {
    clearInterval(check);
    socket.destroy();
  };
  // Destroying drops what is still queued for writing: once the client is done, wait until the answer is flushed.
  const closeWhenFlushed = () => {
    if (socket.writableFinished) close();
    else socket.once("finish", close);
  };
  // Polled rather than counted in a 'data' listener: adding one takes the socket off the HTTP parser's direct read
  // path, and a socket paused on that path then never reads again.
  const check = setInterval(() => {
    if (Date.now() - startedAt >= bounds.maxMs || socket.bytesRead - startBytes > bounds.maxBytes) close();
  }, lingerCheckMs);
  check.unref();
  socket.once("end", closeWhenFlushed);
  socket.once("close", () => clearInterval(check));
  untilEndOf?.once("end", closeWhenFlushed);
  // Reading again resumes a socket that the unread body had paused.
  untilEndOf?.resume();
  socket.end();
}

const lingerCheckMs = 50;

/**
 * Makes the close that follows this request's answer a staged one when its body is not read to the end. Node ends a
 * `Connection: close` answer's socket with `socket.destroySoon()` as soon as the answer is written, with the rest of
 * the body unread; on this socket only, that call closes in stages instead.
 */
export function closeInStagesAfterAnswer(request: IncomingMessage, bounds: LingerBounds = defaultLingerBounds): void {
  if (request.complete) return;
  const socket = request.socket;
  socket.destroySoon = () => closeInStages(socket, bounds, request);
}
