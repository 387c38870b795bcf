/**
 * Anthropic both ways, over real sockets: the service calls Anthropic's Messages API (the mock upstream speaks it)
 * for claude-… models, and answers Anthropic's own API at /v1/messages for any model, so that the official SDK works
 * against it unchanged. The openai client reaches Claude through /v1/chat/completions the same way.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { type MockUpstream, startMockUpstream } from "../src/mock-upstream/server.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

describe("Anthropic: the provider and the compatible API", () => {
  let upstream: MockUpstream;
  let service: TestService;
  let user: { id: string; key: string };
  let anthropic: Anthropic;
  let openai: OpenAI;
  const sentToAnthropic: unknown[] = [];

  before(async () => {
    upstream = await startMockUpstream({
      port: 0,
      apiKey: "sk-test-upstream",
      onMessagesRequest: (body) => sentToAnthropic.push(body),
    });
    service = await startTestService({
      upstream,
      env: {
        ANTHROPIC_API_KEY: "sk-test-upstream",
        ANTHROPIC_BASE_URL: `http://127.0.0.1:${upstream.port}`,
        UPSTREAM_MAX_RETRIES: "2",
      },
    });
    user = await service.createUser();
    anthropic = new Anthropic({ apiKey: user.key, baseURL: service.url, maxRetries: 0 });
    openai = new OpenAI({ apiKey: user.key, baseURL: `${service.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await service?.close();
    await upstream?.close();
  });

  const unique = (what: string) => `${what} ${Math.random().toString(36).slice(2)}`;
  const count = (route: string) => upstream.stats().requests[route] ?? 0;
  const lastSent = () => sentToAnthropic.at(-1) as Record<string, unknown>;
  const newestRecord = async () => (await service.call("GET", "/requests?limit=1", { key: user.key })).body.data[0];

  test("the SDK asks a claude model: Anthropic is called natively (system on top, max_tokens), the answer is Anthropic's", async () => {
    const before = count("POST /v1/messages");
    const message = await anthropic.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 200,
      system: "You are terse.",
      messages: [{ role: "user", content: unique("Say hello") }],
    });
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.equal(message.model, "claude-sonnet-4-5");
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.content[0]?.type, "text");
    assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);
    assert.equal(count("POST /v1/messages") - before, 1);
    assert.equal(lastSent().system, "You are terse.");
    assert.equal(lastSent().max_tokens, 200);

    const record = await newestRecord();
    assert.equal(record.provider, "anthropic");
    assert.equal(record.model, "claude-sonnet-4-5");
    assert.ok(record.cost_usd > 0, "Claude's price is known");
  });

  test("streamed: the SDK's accumulator rebuilds the message from our events", async () => {
    const stream = anthropic.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 200,
      messages: [{ role: "user", content: unique("Tell a story") }],
    });
    const types: string[] = [];
    stream.on("streamEvent", (event) => types.push(event.type));
    const message = await stream.finalMessage();
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assert.equal(types.at(-2), "message_delta");
    assert.ok(message.content[0]?.type === "text" && message.content[0].text.length > 0);
    assert.equal(message.stop_reason, "end_turn");
    assert.ok(message.usage.output_tokens > 0);
    const record = await newestRecord();
    assert.equal(record.provider, "anthropic");
    assert.equal(record.status, "completed");
  });

  test("a gpt model through /v1/messages goes to OpenAI and comes back in Anthropic's shape, plain and streamed", async () => {
    const before = count("POST /v1/chat/completions");
    const message = await anthropic.messages.create({
      model: "gpt-4o-mini",
      max_tokens: 100,
      system: "Be brief.",
      messages: [{ role: "user", content: unique("Hello there") }],
    });
    assert.equal(message.model, "gpt-4o-mini");
    assert.equal(message.content[0]?.type, "text");
    assert.equal(message.stop_reason, "end_turn");
    const streamed = await anthropic.messages
      .stream({ model: "gpt-4o-mini", max_tokens: 100, messages: [{ role: "user", content: unique("Stream it") }] })
      .finalMessage();
    assert.ok(streamed.content[0]?.type === "text" && streamed.content[0].text.length > 0);
    assert.equal(count("POST /v1/chat/completions") - before, 2);
    const record = await newestRecord();
    assert.equal(record.provider, "openai");
  });

  test("tools both ways: a forced tool is a tool_use block, and its result goes back as a tool_result", async () => {
    for (const model of ["claude-sonnet-4-5", "gpt-4o-mini"]) {
      const tools: Anthropic.Tool[] = [
        {
          name: "get_weather",
          description: "Weather for a city",
          input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      ];
      const asked = unique("Weather in Paris?");
      const first = await anthropic.messages.create({
        model,
        max_tokens: 200,
        tools,
        tool_choice: { type: "tool", name: "get_weather" },
        messages: [{ role: "user", content: asked }],
      });
      assert.equal(first.stop_reason, "tool_use", model);
      const call = first.content.find((block) => block.type === "tool_use");
      assert.ok(call && call.type === "tool_use" && call.name === "get_weather", model);
      assert.equal(typeof (call.input as { city?: unknown }).city, "string", model);

      const second = await anthropic.messages.create({
        model,
        max_tokens: 200,
        tools,
        messages: [
          { role: "user", content: asked },
          { role: "assistant", content: first.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "Sunny, 21°C" }] },
        ],
      });
      assert.equal(second.stop_reason, "end_turn", model);
    }
  });

  test("a conversation moving from a gpt model to claude: the unsigned thinking it carries is not sent to Anthropic", async () => {
    const answer = await anthropic.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      messages: [
        { role: "user", content: unique("Capital of France?") },
        {
          role: "assistant",
          content: [
            // What /v1/messages gives for a gpt model's reasoning: thinking without Anthropic's signature.
            { type: "thinking", thinking: "The capital is Paris.", signature: "" },
            { type: "text", text: "Paris." },
          ],
        },
        { role: "user", content: "And of Italy?" },
      ],
    });
    assert.equal(answer.stop_reason, "end_turn");
    const sent = lastSent().messages as Array<{ role: string; content: Array<{ type: string }> }>;
    assert.deepEqual(
      sent[1]?.content.map((block) => block.type),
      ["text"],
    );
  });

  test("the SDK lists and retrieves models: Anthropic's page of every provider's models", async () => {
    const ids: string[] = [];
    for await (const model of anthropic.models.list({ limit: 2 })) ids.push(model.id);
    assert.ok(ids.includes("gpt-4o-mini"), ids.join());
    assert.ok(
      ids.some((id) => id.startsWith("claude-")),
      ids.join(),
    );
    assert.equal(new Set(ids).size, ids.length, "paging repeats no model");
    const one = await anthropic.models.retrieve(ids[0] ?? "");
    assert.equal(one.id, ids[0]);
    assert.equal(one.type, "model");
    const listed = await openai.models.list();
    assert.deepEqual(
      listed.data.map((model) => model.id),
      ids,
    );
  });

  test("the openai client asks a claude model through /v1/chat/completions: answered by Anthropic, in OpenAI's shape", async () => {
    const before = count("POST /v1/messages");
    const completion = await openai.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: unique("Hi") },
      ],
    });
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.choices[0]?.finish_reason, "stop");
    assert.ok(completion.usage && completion.usage.prompt_tokens > 0);
    assert.equal(count("POST /v1/messages") - before, 1);
    assert.equal(lastSent().system, "Be brief.");
    assert.equal(typeof lastSent().max_tokens, "number", "max_tokens is always sent");

    const chunks = await openai.chat.completions.create({
      model: "claude-sonnet-4-5",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: unique("Stream") }],
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of chunks) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    assert.ok(text.length > 0);
    assert.ok(usage && usage.completion_tokens > 0);
  });

  test("count_tokens: Anthropic's own count for a claude model, the service's for any other", async () => {
    const params = { messages: [{ role: "user" as const, content: "How many tokens is this?" }] };
    const claude = await anthropic.messages.countTokens({ model: "claude-sonnet-4-5", ...params });
    const created = await anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 50, ...params });
    assert.equal(claude.input_tokens, created.usage.input_tokens);
    const gpt = await anthropic.messages.countTokens({ model: "gpt-4o-mini", ...params });
    assert.ok(gpt.input_tokens > 0);
  });

  test("a repeat is answered from the cache: no second upstream call", async () => {
    const params = {
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      messages: [{ role: "user" as const, content: unique("Cache me") }],
    };
    const before = count("POST /v1/messages");
    const first = await anthropic.messages.create(params).withResponse();
    const second = await anthropic.messages.create(params).withResponse();
    assert.equal(first.response.headers.get("x-cache"), "miss");
    assert.equal(second.response.headers.get("x-cache"), "hit");
    assert.deepEqual(second.data.content, first.data.content);
    assert.equal(count("POST /v1/messages") - before, 1);
  });

  test("errors are Anthropic's, so the SDK raises its own typed errors", async () => {
    const stranger = new Anthropic({ apiKey: `arh_${"A".repeat(40)}`, baseURL: service.url, maxRetries: 0 });
    await assert.rejects(
      stranger.messages.create({
        model: "claude-sonnet-4-5",
        max_tokens: 10,
        messages: [{ role: "user", content: "x" }],
      }),
      Anthropic.AuthenticationError,
    );
    const missing = await service.call("POST", "/v1/messages", {
      key: user.key,
      body: { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "x" }] },
    });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.type, "error");
    assert.equal(missing.body.error.type, "invalid_request_error");
    assert.match(missing.body.error.message, /max_tokens/);
    const malformed = await service.call("POST", "/v1/messages", { key: user.key, rawBody: "{not json" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.type, "invalid_request_error");
  });

  test("Anthropic overloaded (529) is retried like a 5xx; the caller gets the answer", async () => {
    upstream.setFaults({ failNext: [{ status: 529 }] });
    const message = await anthropic.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: unique("After an overload") }],
    });
    assert.equal(message.stop_reason, "end_turn");
    const { id } = await newestRecord();
    const record = (await service.call("GET", `/requests/${id}`, { key: user.key })).body;
    assert.equal(record.retries, 1);
  });

  test("the key may come as x-api-key (the SDK's way) or as a bearer token (Claude Code's other way)", async () => {
    const body = { model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: unique("k") }] };
    const viaHeader = await service.call("POST", "/v1/messages", {
      body,
      headers: { "x-api-key": user.key, "anthropic-version": "2023-06-01" },
    });
    assert.equal(viaHeader.status, 200, viaHeader.text);
    const viaBearer = await service.call("POST", "/v1/messages", { key: user.key, body });
    assert.equal(viaBearer.status, 200, viaBearer.text);
  });
});
