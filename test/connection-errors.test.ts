import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { FastifyBaseLogger } from "fastify";
import { createClientErrorHandler } from "../src/http/connection-errors.ts";
import { createLogger } from "../src/observability/logger.ts";
import { type RawAnswer, rawRequest } from "./helpers/raw-http.ts";
import { type CallResult, startTestService, type TestService } from "./helpers/service.ts";

const problemType = (slug: string) => `https://ai-request-handler.dev/problems/${slug}`;

/** An RFC 9457 answer of the given status and type, whose request id is the one in its x-request-id header. */
function assertProblem(answer: Pick<RawAnswer, "status" | "headers" | "body">, status: number, slug: string) {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.headers["content-type"], "application/problem+json; charset=utf-8");
  assert.equal(answer.body.type, problemType(slug));
  assert.equal(answer.body.status, status);
  assert.ok(answer.body.title && answer.body.detail, JSON.stringify(answer.body));
  assert.ok(answer.body.request_id, "the answer names its request id");
  assert.equal(answer.body.request_id, answer.headers["x-request-id"]);
}

/** OpenAI's error shape, as its SDKs parse it. */
function assertOpenAIError(answer: Pick<RawAnswer, "status" | "headers" | "body">, status: number, code: string) {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.headers["content-type"], "application/json; charset=utf-8");
  assert.deepEqual(Object.keys(answer.body), ["error"]);
  assert.deepEqual(Object.keys(answer.body.error).sort(), ["code", "message", "param", "type"]);
  assert.equal(answer.body.error.code, code);
  assert.equal(answer.body.error.type, "invalid_request_error");
}

/** A fetch answer in the raw helper's form, for the assertions above. */
const fetched = (answer: CallResult) => ({
  status: answer.status,
  headers: Object.fromEntries(answer.headers),
  body: answer.body,
});

const get = (path: string, headers = "") => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`;
const oversizeHeader = `X-Filler: ${"a".repeat(20_000)}\r\n`;

describe("errors Node and Fastify answer before any route runs take the API's shapes", () => {
  let service: TestService;
  let user: { key: string };

  before(async () => {
    service = await startTestService({ backend: "postgres", redis: false, provider: "builtin" });
    user = await service.createUser();
  });
  after(() => service.close());

  test("a path that is not valid percent-encoding: 400 problem, or OpenAI's shape under /v1", async () => {
    const native = await service.call("GET", "/requests/%ZZ", { key: user.key });
    assertProblem(fetched(native), 400, "invalid-request");
    assert.equal(native.body.errors[0].path, "url");

    const openAI = await service.call("GET", "/v1/models/%ZZ", { key: user.key });
    assertOpenAIError(fetched(openAI), 400, "invalid_request");
    assert.ok(openAI.headers.get("x-request-id"));
  });

  test("a path parameter over the length limit: 414 problem", async () => {
    const answer = await service.call("GET", `/requests/req_${"a".repeat(200)}`, { key: user.key });
    assertProblem(fetched(answer), 414, "uri-too-long");
    assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
  });

  test("headers over the size limit: 431 problem, OpenAI's shape under /v1, and a log line", async () => {
    const native = await rawRequest(service.url, get("/requests", oversizeHeader));
    assertProblem(native, 431, "headers-too-large");
    assert.equal(native.headers.connection, "close");
    assert.equal(native.error, undefined);
    assert.ok(
      service.logs.some((line) => line.status === 431 && line.requestId === native.body.request_id),
      "the refusal is logged with the answer's request id",
    );

    const openAI = await rawRequest(service.url, get("/v1/chat/completions", oversizeHeader));
    assertOpenAIError(openAI, 431, "headers_too_large");
    assert.equal(openAI.body.error.param, "headers");
  });

  test("a client that writes oversize headers and a 3 MiB body before reading still reads the 431", async () => {
    const body = Buffer.alloc(3 * 1024 * 1024, "a");
    const head = `POST /requests HTTP/1.1\r\nHost: localhost\r\n${oversizeHeader}Content-Length: ${body.length}\r\n\r\n`;
    const answer = await rawRequest(service.url, Buffer.concat([Buffer.from(head), body]), { readAfterWrite: true });
    assert.equal(answer.error, undefined, "the connection closes cleanly, without a reset");
    assertProblem(answer, 431, "headers-too-large");
  });

  test("a NUL byte in a header value: 400 problem naming the parser's reason", async () => {
    const answer = await rawRequest(service.url, get("/requests", "X-Broken: a\0b\r\n"));
    assertProblem(answer, 400, "invalid-request");
    assert.match(answer.body.detail, /not valid HTTP: Invalid header value char/);
    assert.equal(answer.headers.connection, "close");

    const openAI = await rawRequest(service.url, get("/v1/models", "X-Broken: a\0b\r\n"));
    assertOpenAIError(openAI, 400, "invalid_request");
  });

  test("bytes that are not HTTP at all (no URL to go by): 400 problem", async () => {
    const answer = await rawRequest(service.url, "HELLO THERE\r\n\r\n");
    assertProblem(answer, 400, "invalid-request");
  });

  test("an Expect other than 100-continue: 417 problem, or OpenAI's shape under /v1", async () => {
    const native = await rawRequest(
      service.url,
      `POST /requests HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${user.key}\r\n` +
        "Expect: teapot\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assertProblem(native, 417, "expectation-failed");
    assert.equal(native.body.errors[0].path, "expect");
    assert.equal(native.headers["x-content-type-options"], "nosniff");

    const openAI = await rawRequest(service.url, get("/v1/models", "Expect: teapot\r\nConnection: close\r\n"));
    assertOpenAIError(openAI, 417, "expectation_failed");
  });

  test("Expect: 100-continue with a declared body over the limit: 413 at once, no 100 Continue", async () => {
    const answer = await rawRequest(
      service.url,
      `POST /requests HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${user.key}\r\n` +
        `Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`,
    );
    assert.deepEqual(answer.statuses, [413], "no 100 Continue asks for a body that would be refused");
    assertProblem(answer, 413, "payload-too-large");
    assert.equal(answer.headers.connection, "close");
  });

  test("Expect: 100-continue with a body within the limit still gets its 100 Continue", async () => {
    const answer = await rawRequest(
      service.url,
      `GET /requests HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${user.key}\r\n` +
        "Expect: 100-continue\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(answer.statuses, [100, 200]);
  });

  describe("a body over the limit, written in one go by a client that reads only afterwards, gets its 413", () => {
    const post = (body: Buffer, framing: string) =>
      Buffer.concat([
        Buffer.from(
          `POST /requests HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${user.key}\r\n` +
            `Content-Type: application/json\r\n${framing}\r\n`,
        ),
        body,
      ]);

    for (const size of [1024 * 1024 + 64, 4 * 1024 * 1024]) {
      test(`${size} bytes with Content-Length`, async () => {
        const body = Buffer.alloc(size, "a");
        const answer = await rawRequest(service.url, post(body, `Content-Length: ${size}\r\n`), {
          readAfterWrite: true,
        });
        assert.equal(answer.error, undefined, "the client finished writing and then read the answer");
        assertProblem(answer, 413, "payload-too-large");
        assert.equal(answer.headers.connection, "close");
      });
    }

    test("6 MiB chunked (the limit is found while reading)", async () => {
      const size = 6 * 1024 * 1024;
      const chunked = Buffer.concat([
        Buffer.from(`${size.toString(16)}\r\n`),
        Buffer.alloc(size, "a"),
        Buffer.from("\r\n0\r\n\r\n"),
      ]);
      const answer = await rawRequest(service.url, post(chunked, "Transfer-Encoding: chunked\r\n"), {
        readAfterWrite: true,
      });
      assert.equal(answer.error, undefined, "the client finished writing and then read the answer");
      assertProblem(answer, 413, "payload-too-large");
      assert.equal(answer.headers.connection, "close");
    });
  });
});

describe("the client error handler on its own", () => {
  test("a request whose headers do not arrive in time: 408 problem, and the connection ends", async () => {
    // Node checks the headers timeout every connectionsCheckingInterval (30 s by default): short ones for the test.
    const server = createServer(
      { headersTimeout: 100, requestTimeout: 200, connectionsCheckingInterval: 20 },
      (_, res) => res.end(),
    );
    server.on("clientError", createClientErrorHandler(createLogger("silent") as FastifyBaseLogger));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await rawRequest(`http://127.0.0.1:${port}`, "GET /requests HTTP/1.1\r\nHost: localhost\r\n");
      assertProblem(answer, 408, "request-timeout");
      assert.equal(answer.headers.connection, "close");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
