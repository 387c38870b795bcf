import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createRequestWriter } from "../src/db/request-writer.ts";
import { isRowRejection } from "../src/db/client.ts";
import { createRequestRepository, reducedRecord } from "../src/db/requests.ts";
import { fromStoredJson, isStorableText, toStorableJson, toStorableText } from "../src/db/storable-json.ts";
import type { RequestRecord } from "../src/db/types.ts";
import { createUserRepository } from "../src/db/users.ts";
import { requestRecord } from "./helpers/records.ts";
import { openTestDatabase, storageBackends, type TestDatabase } from "./helpers/databases.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

/**
 * JSON carries U+0000 and lone surrogates; PostgreSQL's jsonb and text refuse them. Content is stored faithfully
 * (escaped), names are refused with 422, and a row the database still refuses fails alone.
 */

const nul = "\u0000";
const loneHigh = "\ud800";
const loneLow = "\udfff";
/** Strings PostgreSQL cannot hold as they are, and strings that look like the escape without being one. */
const tricky = [
  `a${nul}b`,
  `${loneHigh}x`,
  `x${loneLow}`,
  `${loneLow}${loneHigh}`,
  "\uffff",
  "\uffff0000",
  "\uffffd800",
  "\\u0000",
  `\\${nul}`,
  "\\\\u0000",
  "😀 paired surrogates stay as they are",
  "שלום עולם",
  "\u200b\u200b\u200b",
];

describe("storable JSON", () => {
  test("every tricky string and key comes back exactly as it went in", () => {
    for (const text of tricky) {
      const value = { [text]: [text, { nested: text }], plain: "plain" };
      const stored = JSON.parse(toStorableJson(value)) as unknown;
      for (const part of stringsOf(stored)) assert.ok(isStorableText(part), `stored as ${JSON.stringify(part)}`);
      assert.deepEqual(fromStoredJson(stored), value, JSON.stringify(text));
    }
  });

  test("values with nothing to escape are written as JSON.stringify writes them and read back as the same object", () => {
    const value = { input: "hello", list: [1, "two", null], nested: { é: "ü" } };
    assert.equal(toStorableJson(value), JSON.stringify(value));
    assert.equal(fromStoredJson(value), value);
  });

  test("names: what a text column cannot hold is recognised, and an upstream's label is made storable", () => {
    assert.equal(isStorableText("gpt-4o-mini"), true);
    assert.equal(isStorableText("😀"), true);
    for (const bad of [`gpt${nul}`, `m${loneHigh}`, `${loneLow}m`]) {
      assert.equal(isStorableText(bad), false, JSON.stringify(bad));
      assert.equal(isStorableText(toStorableText(bad)), true);
    }
    assert.equal(toStorableText(`gpt${nul}4`), "gpt\ufffd4");
  });
});

/** Every string and object key in a JSON value. */
function stringsOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => [key, ...stringsOf(item)]);
  }
  return [];
}

function recordOf(userId: string, overrides: Partial<RequestRecord> = {}): RequestRecord {
  return requestRecord(userId, {
    input: "a clean input",
    options: { temperature: 0.5 },
    attempts: [{ model: "gpt-4o-mini", outcome: "ok" }],
    metadata: { team: "search" },
    ...overrides,
  });
}

for (const backend of storageBackends) {
  describe(`records the database cannot hold as they are, on ${backend}`, () => {
    let handle: TestDatabase;
    let userId: string;
    let repository: ReturnType<typeof createRequestRepository>;

    before(async () => {
      handle = await openTestDatabase(backend);
      repository = createRequestRepository(handle.database.db, handle.database.writer);
      const created = await createUserRepository(handle.database.db).create({ email: `${backend}-text@example.com` });
      assert.ok(created.ok);
      userId = created.user.id;
    });
    after(() => handle.close());

    test("content with U+0000, lone surrogates and U+FFFF is stored and read back exactly", async () => {
      const records = tricky.map((text) =>
        recordOf(userId, {
          input: [{ role: "user", content: text }],
          options: { instructions: text, schema: { type: "object", properties: { [text]: { type: "string" } } } },
          output: { [text]: text },
          error: { code: "upstream_error", message: text },
          metadata: { [`k${tricky.indexOf(text)}`]: text },
        }),
      );
      assert.equal(await repository.insertMany(records), records.length);
      for (const record of records) {
        const stored = await repository.get(userId, record.id);
        assert.ok(stored, record.id);
        assert.deepEqual(
          { input: stored.input, options: stored.options, output: stored.output, error: stored.error },
          { input: record.input, options: record.options, output: record.output, error: record.error },
        );
        assert.deepEqual(stored.metadata, record.metadata);
      }
      // The list reads the same columns through the same path.
      const page = await repository.list({ userId, limit: 100 });
      const listed = page.data.find((item) => item.id === records[0]?.id);
      assert.deepEqual(listed?.input, records[0]?.input);
    });

    test("a model name the upstream garbled is stored with U+FFFD in its place", async () => {
      const record = recordOf(userId, { model: `gpt${nul}x${loneHigh}` });
      await repository.insertMany([record]);
      assert.equal((await repository.get(userId, record.id))?.model, "gpt\ufffdx\ufffd");
    });

    test("one row the database refuses fails alone: its batch neighbours commit, and it is kept reduced", async () => {
      const statements: number[] = [];
      const salvaged: string[] = [];
      const writer = createRequestWriter({
        insertMany: (rows) => {
          statements.push(rows.length);
          return repository.insertMany(rows);
        },
        isRowError: isRowRejection,
        salvage: reducedRecord,
        onSalvaged: (record) => salvaged.push(record.id),
      });
      // Tokens past PostgreSQL's integer: refused for the value the row carries, whatever its content.
      const poisoned = recordOf(userId, { promptTokens: 2 ** 40, totalTokens: 2 ** 40 + 7, input: "poisoned" });
      const clean = Array.from({ length: 7 }, (_, i) => recordOf(userId, { input: `clean ${i} שלום` }));
      const all = [...clean.slice(0, 3), poisoned, ...clean.slice(3)];
      // One synchronous burst: the writer puts them in one statement.
      await Promise.all(all.map((record) => writer.write(record)));
      assert.equal(statements[0], all.length, "the first statement carried the whole batch");
      assert.ok(statements.length > 2, "the failed batch was written again in parts");
      assert.deepEqual(salvaged, [poisoned.id]);

      for (const record of clean) {
        const stored = await repository.get(userId, record.id);
        assert.equal(stored?.input, record.input, "a clean neighbour is stored whole");
        assert.equal(stored?.error, null);
      }
      const kept = await repository.get(userId, poisoned.id);
      assert.ok(kept, "the refused row still has a record");
      assert.equal(kept.input, null);
      assert.equal(kept.output, null);
      assert.equal(kept.costUsd, poisoned.costUsd, "its cost is kept");
      assert.equal(kept.promptTokens, 2_147_483_647, "its tokens are kept, capped at what the column holds");
      assert.equal(kept.error?.code, "content_not_stored");
    });

    test("a failure of the database itself still fails the whole batch (nothing is split or reduced)", async () => {
      let statements = 0;
      const writer = createRequestWriter({
        insertMany: async () => {
          statements++;
          throw Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
        },
        isRowError: isRowRejection,
        salvage: reducedRecord,
      });
      const results = await Promise.allSettled([1, 2, 3].map(() => writer.write(recordOf(userId))));
      assert.deepEqual(
        results.map((result) => result.status),
        ["rejected", "rejected", "rejected"],
      );
      assert.equal(statements, 1);
    });
  });
}

for (const backend of storageBackends) {
  describe(`clean and poisoned requests together, through the service on ${backend}`, () => {
    let service: TestService;
    let alice: { key: string };
    let bob: { key: string };

    before(async () => {
      service = await startTestService({ backend });
      alice = await service.createUser();
      bob = await service.createUser();
    });
    after(() => service.close());

    const upstreamCalls = () => service.upstream?.stats().totalRequests ?? 0;

    test("every request is answered and stored as it came, whichever neighbour carried U+0000 or a lone surrogate", async () => {
      const native = [
        { type: "summarize", input: "שלום עולם, זה טקסט בעברית לסיכום." },
        { type: "summarize", input: "\u200b\u200b\u200b" },
        { type: "chat", input: `plain ${nul} with a NUL` },
        { type: "chat", input: [{ role: "user", content: `lone ${loneHigh} high and ${loneLow} low` }] },
        { type: "summarize", input: "needs care", options: { instructions: `be brief${nul}` } },
        { type: "classify", input: "I love it", options: { labels: [`good${loneHigh}`, "bad"] } },
        {
          type: "extract",
          input: "Ada Lovelace",
          options: { schema: { type: "object", properties: { [`na${nul}me`]: { type: "string" } } } },
        },
        { type: "translate", input: `\uffff0000 is not an escape`, options: { target_language: "French" } },
      ].map((body, i) => ({ ...body, input: body.input, cache: false, metadata: { n: String(i) } }));
      const openai = { model: "gpt-4o-mini", messages: [{ role: "user", content: `v1 ${nul} ${loneLow}` }] };

      const answers = await Promise.all([
        ...native.map((body, i) => service.call("POST", "/requests", { key: i % 2 ? alice.key : bob.key, body })),
        service.call("POST", "/v1/chat/completions", { key: alice.key, body: openai }),
      ]);
      for (const [i, answer] of answers.entries())
        assert.equal(answer.status, i < native.length ? 201 : 200, answer.text);

      for (const [i, body] of native.entries()) {
        const answer = answers[i]!;
        const stored = await service.call("GET", `/requests/${answer.body.id}`, { key: i % 2 ? alice.key : bob.key });
        assert.equal(stored.status, 200, stored.text);
        assert.deepEqual(stored.body.input, body.input, `input of ${i} as it came`);
        if (body.options) {
          for (const [name, value] of Object.entries(body.options)) assert.deepEqual(stored.body.options[name], value);
        }
        assert.deepEqual(stored.body.output, answer.body.output, `output of ${i} as answered`);
      }
      const recordId = answers[native.length]!.headers.get("x-record-id");
      const stored = await service.call("GET", `/requests/${recordId}`, { key: alice.key });
      assert.deepEqual(stored.body.input, openai.messages);
    });

    test("a name PostgreSQL cannot hold is refused with 422 naming the field, before any upstream call", async () => {
      const before = upstreamCalls();
      const cases: Array<[string, unknown, string]> = [
        ["/requests", { type: "summarize", input: "text", model: `gpt${nul}` }, "model"],
        ["/requests", { type: "summarize", input: "text", metadata: { [`k${nul}`]: "v" } }, "metadata"],
        ["/requests", { type: "summarize", input: "text", metadata: { k: `v${loneHigh}` } }, "metadata.k"],
      ];
      for (const [path, body, field] of cases) {
        const answer = await service.call("POST", path, { key: alice.key, body });
        assert.equal(answer.status, 422, answer.text);
        assert.ok(
          (answer.body.errors as Array<{ path: string }>).some((error) => error.path.startsWith(field)),
          answer.text,
        );
      }
      const v1 = await service.call("POST", "/v1/chat/completions", {
        key: alice.key,
        body: { model: `gpt${loneLow}`, messages: [{ role: "user", content: "hi" }] },
      });
      assert.equal(v1.status, 400, v1.text);
      assert.equal(v1.body.error.param, "model");
      const admin = await service.call("POST", "/admin/users", {
        key: service.adminKey,
        body: { email: "named@example.com", name: `Ada${nul}` },
      });
      assert.equal(admin.status, 422, admin.text);
      const userPath = await service.call("GET", `/admin/users/usr_${encodeURIComponent(nul)}`, {
        key: service.adminKey,
      });
      assert.ok(userPath.status === 400 || userPath.status === 404, userPath.text);
      assert.equal(upstreamCalls(), before, "no upstream call was made");
    });
  });
}
