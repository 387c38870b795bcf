import { finished, Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";

/**
 * What a graceful shutdown needs to know of the HTTP side: which requests' work is not over yet, and whether the
 * service is draining (then every answer tells its client not to reuse the connection, so a keep-alive client
 * neither holds the server open, as Fastify's close waits for every connection, nor sends more work to it).
 */
export interface Drain {
  /** From now on, answers carry `Connection: close`. */
  start(): void;
  /** Requests whose work is not over. */
  unfinished(): number;
  /** Resolves true once no request is unfinished, or false at `deadline` (epoch ms). */
  allFinished(deadline: number): Promise<boolean>;
}

/**
 * A request's work is over once its handler has answered (onSend runs for answers and errors alike, after the
 * record is committed), or, for a stream, once the stream has closed (its generator has stored the record by then).
 * A connection that closes early, its client gone or cut by shutdown, does not end the work: the handler goes on
 * to store the request as cancelled, and shutdown must wait for that before it closes the writer.
 */
export function addDrainHooks(app: FastifyInstance): Drain {
  let draining = false;
  const unfinished = new Set<FastifyRequest>();
  let onAllFinished: (() => void) | undefined;
  const finish = (request: FastifyRequest) => {
    if (unfinished.delete(request) && unfinished.size === 0) onAllFinished?.();
  };
  // Synchronous hooks (done callbacks): no promise per request for two lines of bookkeeping.
  app.addHook("onRequest", (request, _reply, done) => {
    unfinished.add(request);
    done();
  });
  app.addHook("onSend", (request, reply, payload, done) => {
    // A streamed answer (Fastify pipes it), as opposed to a string or a buffer.
    if (payload instanceof Readable) finished(payload, () => finish(request));
    else finish(request);
    if (draining && request.raw.httpVersionMajor < 2) reply.header("connection", "close");
    done(null, payload);
  });

  return {
    start() {
      draining = true;
    },
    unfinished: () => unfinished.size,
    allFinished: (deadline) =>
      new Promise<boolean>((resolve) => {
        if (unfinished.size === 0) return resolve(true);
        const timer = setTimeout(() => {
          onAllFinished = undefined;
          resolve(false);
        }, deadline - Date.now());
        onAllFinished = () => {
          clearTimeout(timer);
          onAllFinished = undefined;
          resolve(true);
        };
      }),
  };
}
