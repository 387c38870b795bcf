import { randomUUID } from "node:crypto";
import { type IncomingMessage, type Server, STATUS_CODES, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyBaseLogger } from "fastify";
import { AppError, toAnthropicError, toOpenAIError, toProblem } from "../errors.ts";
import { isAnthropicPath, isOpenAIPath } from "./error-handler.ts";
import { apiSecurityHeaders } from "./security-headers.ts";
import { closeInStages, closeInStagesAfterAnswer } from "./staged-close.ts";

/** What Node hands to `clientError`: a socket error, or llhttp's parse error with its code, reason and packet. */
export interface ClientError extends Error {
  code?: string;
  reason?: string;
  /** A Buffer at run time (Fastify's type describes its JSON form). */
  rawPacket?: unknown;
}

/**
 * Answers requests that Node's HTTP parser refused (headers over the size limit, a NUL in a header value, a request
 * that took too long to arrive, …) in the API's error shapes, on the socket itself since no request exists. For
 * Fastify's `clientErrorHandler` option, which puts it on the server's `clientError` event in place of its own.
 */
export function createClientErrorHandler(logger: FastifyBaseLogger) {
  return function onClientError(error: ClientError, socket: Socket): void {
    // Reset by the client, or already answered (a failed parser fails again on every later chunk): nothing to say.
    if (error.code === "ECONNRESET" || !socket.writable) return;
    const appError = appErrorOf(error);
    const requestId = randomUUID();
    logger.info(
      { status: appError.status, code: error.code, reason: error.reason, requestId },
      "request refused before it reached a route",
    );
    // Node's own guard: an answer already under way on this connection must not get a second one in its middle.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inFlight?.headersSent) {
      socket.destroy(error);
      return;
    }
    socket.write(rawAnswer(appError, requestId, requestTargetOf(error.rawPacket)));
    // A request already handed to the app is cut off at once, as Node does; otherwise the client may still be
    // writing the rest of its request, which is read and dropped so that the answer is not lost to a reset.
    if (inFlight) socket.destroy(error);
    else closeInStages(socket);
  };
}

function appErrorOf(error: ClientError): AppError {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return new AppError("headers_too_large", "the request's headers are larger than the service accepts", {
        errors: [{ path: "headers", message: "are too large" }],
      });
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return new AppError("payload_too_large", "the body's chunk extensions are larger than the service accepts", {
        errors: [{ path: "body", message: "has chunk extensions that are too large" }],
      });
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new AppError("request_timeout", "the request did not arrive in time");
    default:
      return new AppError("invalid_request", `the request is not valid HTTP: ${error.reason ?? "malformed"}`);
  }
}

const requestLine = /^[!-~]+ (\/[!-~]*) HTTP\/\d\.\d\r?\n/;

/**
 * The request target, when the packet the parser failed on starts with a request line (a request sent in one write
 * usually does); undefined otherwise. It decides between OpenAI's error shape and RFC 9457.
 */
function requestTargetOf(packet: unknown): string | undefined {
  if (!Buffer.isBuffer(packet)) return undefined;
  return requestLine.exec(packet.subarray(0, 8192).toString("latin1"))?.[1];
}

/** An error answered outside Fastify: its headers and body, in OpenAI's shape under /v1, else RFC 9457. */
function answerOf(error: AppError, requestId: string, target: string | undefined) {
  const openAI = target !== undefined && isOpenAIPath(target);
  const body = JSON.stringify(
    target !== undefined && isAnthropicPath(target)
      ? toAnthropicError(error, requestId).body
      : openAI
        ? toOpenAIError(error)
        : toProblem(error, requestId),
  );
  const headers: Record<string, string> = {
    "content-type": `${openAI ? "application/json" : "application/problem+json"}; charset=utf-8`,
    "content-length": String(Buffer.byteLength(body)),
    "x-request-id": requestId,
    ...apiSecurityHeaders,
    "cache-control": "no-store",
    connection: "close",
  };
  return { headers, body };
}

function rawAnswer(error: AppError, requestId: string, target: string | undefined): string {
  const { headers, body } = answerOf(error, requestId, target);
  const head = [`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ""}`, `date: ${new Date().toUTCString()}`];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  return `${head.join("\r\n")}\r\n\r\n${body}`;
}

/**
 * `Expect` headers, which Node answers before any route runs. A `100-continue` whose declared body is over the limit
 * gets no 100, so the client never sends the body it would only have to throw away (the app then answers 413); any
 * other expectation is answered 417 here, in the API's error shape, so that no hook on every request has to ask.
 */
export function handleExpectations(server: Server, bodyLimitBytes: number, logger: FastifyBaseLogger): void {
  server.on("checkContinue", (request: IncomingMessage, response: ServerResponse) => {
    if (!(Number(request.headers["content-length"]) > bodyLimitBytes)) response.writeContinue();
    server.emit("request", request, response);
  });
  server.on("checkExpectation", (request: IncomingMessage, response: ServerResponse) => {
    const error = new AppError("expectation_failed", "the only expectation the service meets is Expect: 100-continue", {
      errors: [{ path: "expect", message: "must be 100-continue or absent" }],
    });
    const requestId = randomUUID();
    logger.info(
      { status: error.status, method: request.method, requestId },
      "request refused before it reached a route",
    );
    const { headers, body } = answerOf(error, requestId, request.url?.split("?", 1)[0]);
    // Its body, if any, is read and dropped before the connection closes, so that the client reads the answer.
    closeInStagesAfterAnswer(request);
    response.writeHead(error.status, headers).end(body);
  });
}
