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
  let azure: MockUpstream;
  let service: TestService;
  let key: string;
  const seenByLocal: ChatCompletionRequest[] = [];

  before(async () => {
    openai = await startMockUpstream({ port: 0, apiKey: "sk-openai" });
    local = await startMockUpstream({ port: 0, apiKey: "sk-local", onChatRequest: (body) => seenByLocal.push(body) });
    // Azure takes the key in `api-key`, as it is; this mock refuses it anywhere else.
    azure = await startMockUpstream({ port: 0, apiKey: "sk-azure", apiKeyHeader: "api-key" });
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
        "  azure:",
        `    base_url: ${azure.url}`,
        "    api_key_env: AZURE_KEY",
        "    api_key_header: api-key",
      ].join("\n"),
    );
    service = await startTestService({
      upstream: openai,
      env: {
        OPENAI_API_KEY: "sk-openai",
        PROVIDERS_FILE: providersFile,
        LOCAL_LLM_KEY: "sk-local",
        AZURE_KEY: "sk-azure",
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
    await azure?.close();
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

  test("a provider's api_key_header carries its key (Azure's api-key), not a bearer token", async () => {
    const answer = await chat("azure/gpt-4o-mini");
    assert.equal(answer.status, 200, answer.text);
    assert.equal(azure.stats().requests["POST /v1/chat/completions"], 1);
    const record = await service.call("GET", `/requests/${answer.headers.get("x-record-id")}`, { key });
    assert.equal(record.body.provider, "azure");
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

  test("GET /v1/models asked as Anthropic's SDK asks (anthropic-version): Anthropic's page, paged by limit and after_id", async () => {
    const headers = { "anthropic-version": "2023-06-01" };
    const all = await service.call("GET", "/v1/models?limit=1000", { key, headers });
    assert.equal(all.status, 200, all.text);
    const ids: string[] = all.body.data.map((model: { id: string }) => model.id);
    assert.ok(ids.includes("llama-3-8b") && ids.includes("gpt-4o-mini"), ids.join());
    assert.deepEqual(Object.keys(all.body.data[0]).sort(), [
      "capabilities",
      "created_at",
      "deprecated_at",
      "display_name",
      "id",
      "lifecycle",
      "line",
      "max_input_tokens",
      "max_tokens",
      "retires_at",
      "type",
    ]);
    assert.equal(all.body.data[0].type, "model");
    assert.ok(!Number.isNaN(Date.parse(all.body.data[0].created_at)));
    assert.equal(all.body.has_more, false);

    const first = await service.call("GET", "/v1/models?limit=2", { key, headers });
    assert.deepEqual(
      first.body.data.map((model: { id: string }) => model.id),
      ids.slice(0, 2),
    );
    assert.equal(first.body.has_more, true);
    assert.equal(first.body.last_id, ids[1]);
    const next = await service.call("GET", `/v1/models?limit=2&after_id=${encodeURIComponent(ids[1] ?? "")}`, {
      key,
      headers,
    });
    assert.deepEqual(
      next.body.data.map((model: { id: string }) => model.id),
      ids.slice(2, 4),
    );
    const back = await service.call("GET", `/v1/models?limit=1&before_id=${encodeURIComponent(ids[2] ?? "")}`, {
      key,
      headers,
    });
    assert.deepEqual(
      back.body.data.map((model: { id: string }) => model.id),
      [ids[1]],
    );

    const bad = await service.call("GET", "/v1/models?limit=0", { key, headers });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.type, "error");
    assert.equal(bad.body.error.type, "invalid_request_error");
    assert.match(bad.body.error.message, /limit/);
  });

  test("GET /v1/models/{model}: one model in the asker's shape; an unknown one is a 404 in that shape", async () => {
    const openai = await service.call("GET", "/v1/models/org/tiny", { key });
    assert.equal(openai.status, 200, openai.text);
    assert.deepEqual(
      { id: openai.body.id, object: openai.body.object, owned_by: openai.body.owned_by },
      {
        id: "org/tiny",
        object: "model",
        owned_by: "local",
      },
    );
    const anthropic = await service.call("GET", "/v1/models/gpt-4o-mini", {
      key,
      headers: { "anthropic-version": "2023-06-01" },
    });
    assert.equal(anthropic.body.type, "model");
    assert.equal(anthropic.body.id, "gpt-4o-mini");

    const missingOpenAI = await service.call("GET", "/v1/models/no-such-model", { key });
    assert.equal(missingOpenAI.status, 404);
    // Decoded once, by the router: a percent sign in the name is a name, not a broken escape.
    const percent = await service.call("GET", "/v1/models/%25ZZ", { key });
    assert.equal(percent.status, 404, percent.text);
    assert.match(percent.body.error.message, /'%ZZ'/);
    assert.equal(missingOpenAI.body.error.param, "model");
    const missingAnthropic = await service.call("GET", "/v1/models/no-such-model", {
      key,
      headers: { "anthropic-version": "2023-06-01" },
    });
    assert.equal(missingAnthropic.status, 404);
    assert.equal(missingAnthropic.body.error.type, "not_found_error");
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
  // Last: it leaves the local provider's circuit open.
  test("a provider's circuit opening shows in /metrics under its name; the others stay closed", async () => {
    const metric = async (provider: string) => {
      const text = (await service.call("GET", "/metrics", { key: service.adminKey })).text;
      return new RegExp(`^arh_upstream_circuit_open\\{provider="${provider}"\\} (\\d)$`, "m").exec(text)?.[1];
    };
    assert.equal(await metric("local"), "0");
    // Five failures in a row open it (CIRCUIT_FAILURE_THRESHOLD); the earlier fallback test's failure may count.
    local.setFaults({ failNext: Array.from({ length: 5 }, () => ({ status: 500 })) });
    const statuses: number[] = [];
    while (statuses.at(-1) !== 503 && statuses.length < 7) statuses.push((await chat("local/org/tiny")).status);
    assert.deepEqual(new Set(statuses), new Set([502, 503]), statuses.join());
    assert.equal(await metric("local"), "1");
    assert.equal(await metric("openai"), "0");
  });
});
