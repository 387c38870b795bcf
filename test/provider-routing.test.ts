/**
 * Several providers behind one service: OpenAI (a mock upstream) and a PROVIDERS_FILE provider (another mock
 * upstream with its own key), each request routed by its model, every way in, with records, metrics, the models
 * list and fallbacks naming the provider that answered.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import type { ChatCompletionRequest } from "../src/providers/provider.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

describe("routing requests to providers", () => {
  let openai: MockUpstream;
  let local: MockUpstream;
  let service: TestService;
  let key: string;
  const seenByLocal: ChatCompletionRequest[] = [];

  before(async () => {
    openai = await startMockUpstream({ port: 0, apiKey: "sk-openai" });
    local = await startMockUpstream({ port: 0, apiKey: "sk-local", onChatRequest: (body) => seenByLocal.push(body) });
    const dir = mkdtempSync(join(tmpdir(), "arh-routing-"));
    const providersFile = join(dir, "providers.yaml");
    writeFileSync(
      providersFile,
      [
        "providers:",
        "  local:",
        `    base_url: ${local.url}`,
        "    api_key_env: LOCAL_LLM_KEY",
        "    models: [llama-3-8b, org/tiny]",
      ].join("\n"),
    );
    service = await startTestService({
      upstream: openai,
      env: {
        OPENAI_API_KEY: "sk-openai",
        PROVIDERS_FILE: providersFile,
        LOCAL_LLM_KEY: "sk-local",
        UPSTREAM_FALLBACKS: JSON.stringify({ "llama-3-8b": ["gpt-4o-mini"] }),
        UPSTREAM_MAX_RETRIES: "0",
      },
    });
    key = (await service.createUser()).key;
  });
  after(async () => {
    await service?.close();
    await openai?.close();
    await local?.close();
  });

  const chat = (model: string, content = `hello ${Math.random()}`) =>
    service.call("POST", "/v1/chat/completions", { key, body: { model, messages: [{ role: "user", content }] } });
  const calls = (upstream: MockUpstream) => upstream.stats().requests["POST /v1/chat/completions"] ?? 0;

  test("a model the file's provider lists goes there, with its key; a gpt model goes to OpenAI", async () => {
    const [openaiBefore, localBefore] = [calls(openai), calls(local)];
    const toLocal = await chat("llama-3-8b");
    assert.equal(toLocal.status, 200, toLocal.text);
    const toOpenAI = await chat("gpt-4o-mini");
    assert.equal(toOpenAI.status, 200, toOpenAI.text);
    assert.equal(calls(local) - localBefore, 1);
    assert.equal(calls(openai) - openaiBefore, 1);
  });

  test("`local/model` names the provider; the upstream is asked for the model without the prefix", async () => {
    seenByLocal.length = 0;
    const answer = await chat("local/org/tiny");
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      seenByLocal.map((body) => body.model),
      ["org/tiny"],
    );
  });

  test("a model the named provider does not serve: 404 naming model, and no upstream call", async () => {
    const before = calls(local);
    const answer = await chat("local/gpt-4o");
    assert.equal(answer.status, 404, answer.text);
    assert.equal(answer.body.error.param, "model");
    assert.match(answer.body.error.message, /local/);
    assert.equal(calls(local), before);
  });

  test("the record names the provider that answered, native and /v1 alike", async () => {
    const native = await service.call("POST", "/requests", {
      key,
      body: { type: "summarize", input: `routing ${Math.random()}`, model: "llama-3-8b" },
    });
    assert.equal(native.status, 201, native.text);
    assert.equal(native.body.provider, "local");
    const stored = await service.call("GET", `/requests/${native.body.id}`, { key });
    assert.equal(stored.body.provider, "local");

    const openaiAnswer = await chat("gpt-4o-mini");
    const record = await service.call("GET", `/requests/${openaiAnswer.headers.get("x-record-id")}`, { key });
    assert.equal(record.body.provider, "openai");
  });

  test("a streamed answer is routed and recorded the same way", async () => {
    const answer = await service.call("POST", "/v1/chat/completions", {
      key,
      body: { model: "llama-3-8b", stream: true, messages: [{ role: "user", content: `stream ${Math.random()}` }] },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.text, /data: \[DONE\]/);
    // A stream's record is stored as it ends: the newest of the user's.
    const newest = await service.call("GET", "/requests?limit=1", { key });
    assert.equal(newest.body.data[0].model, "llama-3-8b");
    assert.equal(newest.body.data[0].provider, "local");
  });

  test("GET /v1/models lists every provider's models, each under a name that routes to it", async () => {
    const answer = await service.call("GET", "/v1/models", { key });
    assert.equal(answer.status, 200, answer.text);
    const owners = new Map<string, string>(
      answer.body.data.map((model: { id: string; owned_by: string }) => [model.id, model.owned_by]),
    );
    assert.equal(owners.get("llama-3-8b"), "local");
    assert.equal(owners.get("org/tiny"), "local");
    assert.equal(owners.get("gpt-4o-mini"), "openai");
  });

  test("a fallback may cross providers: the local model fails, OpenAI answers, the record says so", async () => {
    local.setFaults({ failNext: [{ status: 500 }] });
    const answer = await chat("llama-3-8b");
    assert.equal(answer.status, 200, answer.text);
    const record = await service.call("GET", `/requests/${answer.headers.get("x-record-id")}`, { key });
    assert.equal(record.body.provider, "openai");
    assert.deepEqual(
      record.body.attempts.map((attempt: { model: string; outcome: string }) => `${attempt.model} ${attempt.outcome}`),
      ["llama-3-8b upstream_error", "gpt-4o-mini ok"],
    );
  });

  test("upstream metrics are labelled by provider", async () => {
    const metrics = await service.call("GET", "/metrics", { key: service.adminKey });
    assert.match(metrics.text, /arh_upstream_duration_seconds_count\{provider="local",model="llama-3-8b"\}/);
    assert.match(metrics.text, /arh_upstream_duration_seconds_count\{provider="openai",model="gpt-4o-mini"\}/);
  });
});
