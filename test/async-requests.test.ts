import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { StorageBackend } from "./helpers/databases.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

const setups: Array<{ name: string; backend: StorageBackend; redis: boolean }> = [
  { name: "PostgreSQL + Redis", backend: "postgres", redis: true },
  { name: "embedded defaults (PGlite, memory)", backend: "pglite", redis: false },
];

/** Polls GET /requests/{id} until the request has left queued and running; the request object then. */
async function settled(service: TestService, key: string, id: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await service.call("GET", `/requests/${id}`, { key });
    assert.equal(answer.status, 200, answer.text);
    if (answer.body.status !== "queued" && answer.body.status !== "running") return answer.body;
    assert.ok(Date.now() < deadline, `${id} still ${answer.body.status} after ${timeoutMs} ms`);
    await delay(50);
  }
}

for (const setup of setups) {
  describe(`requests run in the background (${setup.name})`, () => {
    let service: TestService;
    let user: { id: string; key: string; keyId: string };

    before(async () => {
      service = await startTestService({
        backend: setup.backend,
        redis: setup.redis,
        env: { QUEUE_POLL_INTERVAL_MS: "500" },
      });
      user = await service.createUser();
    });
    after(() => service?.close());

    const chatCalls = () => service.upstream?.stats().requests["POST /v1/chat/completions"] ?? 0;

    test("Prefer: respond-async answers 202 with the queued request, which then runs once and is stored once", async () => {
      const before = chatCalls();
      const body = {
        type: "summarize",
        input: `Queued work ${setup.name} ${Date.now()}`,
        metadata: { job: "nightly" },
      };
      const accepted = await service.call("POST", "/requests", {
        key: user.key,
        body,
        headers: { prefer: "respond-async, wait=5" },
      });
      assert.equal(accepted.status, 202, accepted.text);
      assert.equal(accepted.headers.get("preference-applied"), "respond-async");
      assert.equal(accepted.headers.get("location"), `/requests/${accepted.body.id}`);
      assert.equal(accepted.body.status, "queued");
      assert.equal(accepted.body.output, null);
      assert.deepEqual(accepted.body.metadata, { job: "nightly" });

      const done = await settled(service, user.key, accepted.body.id);
      assert.equal(done.status, "completed", JSON.stringify(done));
      assert.equal(done.id, accepted.body.id);
      assert.equal(done.created_at, accepted.body.created_at, "it keeps the time it was accepted");
      assert.equal(typeof done.output, "string");
      assert.ok(done.usage.total_tokens > 0);
      assert.ok(done.cost_usd > 0);
      assert.equal(chatCalls() - before, 1, "one upstream call");

      // Listed once, and counted once in the usage and the overview.
      const listed = await service.call("GET", "/requests?limit=100", { key: user.key });
      assert.equal(listed.body.data.filter((r: { id: string }) => r.id === done.id).length, 1);
      const usage = await service.call("GET", "/me/usage", { key: user.key });
      const overview = await service.call(
        "GET",
        "/me/overview?bucket=hour&from=" + new Date(Date.now() - 3_600_000).toISOString(),
        {
          key: user.key,
        },
      );
      assert.equal(overview.status, 200, overview.text);
      assert.equal(overview.body.totals.requests, usage.body.totals.requests);
      assert.equal(overview.body.totals.total_tokens, usage.body.totals.total_tokens);

      // The queue in the metrics: nothing waiting now, and this request's wait from acceptance to start.
      const metrics = (await service.call("GET", "/metrics", { key: service.adminKey })).text;
      assert.match(metrics, /^arh_queue_depth 0$/m);
      const waits = Number(/^arh_queue_wait_seconds_count (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(waits >= 1, `arh_queue_wait_seconds counted ${waits} waits`);
    });

    test("streaming and respond-async together are refused with 400 naming stream", async () => {
      const answer = await service.call("POST", "/requests", {
        key: user.key,
        body: { type: "chat", input: "hi", stream: true },
        headers: { prefer: "respond-async" },
      });
      assert.equal(answer.status, 400, answer.text);
      assert.equal(answer.body.errors[0].path, "stream");
    });

    test("a batch: every entry validated first (422 naming its index), then all run; counts and a list by batch_id", async () => {
      const entries = Array.from({ length: 30 }, (_, i) => ({ type: "summarize", input: `batch ${setup.name} ${i}` }));
      const invalid = await service.call("POST", "/requests/batch", {
        key: user.key,
        body: { requests: [...entries.slice(0, 3), { type: "summarize", input: "x", options: { length: "huge" } }] },
      });
      assert.equal(invalid.status, 422, invalid.text);
      assert.equal(invalid.body.errors[0].path, "requests.3.options.length");
      const streamed = await service.call("POST", "/requests/batch", {
        key: user.key,
        body: { requests: [entries[0], { type: "chat", input: "x", stream: true }] },
      });
      assert.equal(streamed.status, 422, streamed.text);
      assert.equal(streamed.body.errors[0].path, "requests.1.stream");
      const tooMany = await service.call("POST", "/requests/batch", {
        key: user.key,
        body: { requests: Array.from({ length: 1001 }, () => entries[0]) },
      });
      assert.equal(tooMany.status, 422, tooMany.text);
      assert.equal(tooMany.body.errors[0].path, "requests");

      const accepted = await service.call("POST", "/requests/batch", {
        key: user.key,
        body: { requests: entries, metadata: { run: "nightly" } },
      });
      assert.equal(accepted.status, 202, accepted.text);
      assert.match(accepted.body.id, /^bat_[0-9a-z]{21}$/);
      assert.equal(accepted.headers.get("location"), `/batches/${accepted.body.id}`);
      assert.equal(accepted.body.size, 30);
      assert.equal(
        Object.values(accepted.body.counts as Record<string, number>).reduce((a, b) => a + b, 0),
        30,
      );

      const deadline = Date.now() + 30_000;
      let batch = accepted.body;
      while (batch.status !== "completed") {
        assert.ok(Date.now() < deadline, `the batch is still ${batch.status}: ${JSON.stringify(batch.counts)}`);
        await delay(100);
        batch = (await service.call("GET", `/batches/${accepted.body.id}`, { key: user.key })).body;
      }
      assert.equal(batch.counts.completed, 30, JSON.stringify(batch.counts));
      assert.deepEqual(batch.metadata, { run: "nightly" });
      const listed = await service.call("GET", `/requests?limit=100&batch_id=${accepted.body.id}`, { key: user.key });
      assert.equal(listed.body.data.length, 30);
      assert.ok(listed.body.data.every((r: { status: string }) => r.status === "completed"));
      const late = await service.call("POST", `/batches/${accepted.body.id}/cancel`, { key: user.key });
      assert.equal(late.status, 200, late.text);
      assert.equal(late.body.status, "completed", "cancelling a finished batch changes nothing");
      assert.equal(late.body.cancelled_at, null);
      const other = await service.createUser();
      const theirs = await service.call("GET", `/batches/${accepted.body.id}`, { key: other.key });
      assert.equal(theirs.status, 404, "another user's batch is not found");
    });

    test("cancelling a batch stops what has not started; another user's single request is not held behind it", async () => {
      const other = await service.createUser();
      service.upstream?.setFaults({ latencyMs: 150 });
      try {
        const before = chatCalls();
        const entries = Array.from({ length: 40 }, (_, i) => ({
          type: "translate",
          input: `slow ${setup.name} ${Date.now()} ${i}`,
          options: { target_language: "French" },
        }));
        const accepted = await service.call("POST", "/requests/batch", { key: user.key, body: { requests: entries } });
        assert.equal(accepted.status, 202, accepted.text);
        // Accepted after the whole batch, yet run next: each user's k-th waiting request goes before anyone's k+1-th.
        const single = await service.call("POST", "/requests", {
          key: other.key,
          body: { type: "summarize", input: `not held back ${Date.now()}` },
          headers: { prefer: "respond-async" },
        });
        assert.equal(single.status, 202, single.text);
        const singleDone = await settled(service, other.key, single.body.id);
        assert.equal(singleDone.status, "completed");

        const cancelled = await service.call("POST", `/batches/${accepted.body.id}/cancel`, { key: user.key });
        assert.equal(cancelled.status, 200, cancelled.text);
        assert.ok(cancelled.body.status === "cancelling" || cancelled.body.status === "cancelled");
        assert.ok(cancelled.body.counts.cancelled > 0, JSON.stringify(cancelled.body.counts));

        let batch = cancelled.body;
        const deadline = Date.now() + 20_000;
        while (batch.status !== "cancelled") {
          assert.ok(Date.now() < deadline, `still ${batch.status}`);
          await delay(100);
          batch = (await service.call("GET", `/batches/${accepted.body.id}`, { key: user.key })).body;
        }
        const { completed, cancelled: stopped, queued, running } = batch.counts;
        assert.equal(queued + running, 0);
        assert.equal(completed + stopped, 40, JSON.stringify(batch.counts));
        assert.ok(completed < 40, "some never ran");
        // The single request and the batch's completed ones were called; the cancelled ones never were.
        assert.equal(chatCalls() - before, completed + 1);

        const page = await service.call("GET", `/requests?limit=100&batch_id=${accepted.body.id}`, { key: user.key });
        const finishedAt = page.body.data
          .filter((r: { status: string }) => r.status === "completed")
          .map((r: { completed_at: string }) => Date.parse(r.completed_at));
        const laterThanSingle = finishedAt.filter((at: number) => at > Date.parse(singleDone.completed_at)).length;
        assert.ok(completed <= 8 || laterThanSingle > 0, "the single request did not wait for the batch to drain");
      } finally {
        service.upstream?.setFaults({ latencyMs: 0 });
      }
    });

    test("a queued request its user's rpm holds back waits in the queue instead of being refused, then runs", async () => {
      const admin = (method: string, path: string, body: unknown) =>
        service.call(method, path, { key: service.adminKey, body });
      const created = await admin("POST", "/admin/users", {
        email: `paced-${setup.backend}-${Date.now()}@example.com`,
        limits: { rpm: 1 },
      });
      assert.equal(created.status, 201, created.text);
      const key = (await admin("POST", `/admin/users/${created.body.id}/keys`, {})).body.key as string;
      const ask = (input: string) =>
        service.call("POST", "/requests", {
          key,
          body: { type: "summarize", input: `${input} ${Date.now()}` },
          headers: { prefer: "respond-async" },
        });
      const first = await ask("first of the minute");
      assert.equal((await settled(service, key, first.body.id)).status, "completed");
      const second = await ask("second of the minute");
      assert.equal(second.status, 202, "accepted, though the minute's one request is used");

      // Its job tried, found the rpm used, and queued it again for when the minute allows.
      const database = service.running.services.database;
      const waitingJob = async () => {
        const { rows } = await database.executeSql(
          "select id from pgboss.job where data->>'requestId' = $1 and state = 'created' and start_after > now()",
          [second.body.id],
        );
        return rows.length;
      };
      for (let waited = 0; (await waitingJob()) === 0; waited++) {
        assert.ok(waited < 200, "the request was put back in the queue to wait");
        await delay(50);
      }
      const waiting = await service.call("GET", `/requests/${second.body.id}`, { key });
      assert.equal(waiting.body.status, "queued", "waiting, not refused");

      // The admin raises the limit; and the minute passes (the job's start moved to now).
      await admin("PATCH", `/admin/users/${created.body.id}`, { limits: { rpm: 100 } });
      await database.executeSql("update pgboss.job set start_after = now() where data->>'requestId' = $1", [
        second.body.id,
      ]);
      const done = await settled(service, key, second.body.id);
      assert.equal(done.status, "completed", JSON.stringify(done));
      const mine = await service.call("GET", "/requests?limit=10", { key });
      assert.equal(mine.body.data.length, 2, "two requests stored, no refusal among them");
    });

    test("a user disabled after their batch was accepted: what had not started is stored failed, never called", async () => {
      const doomed = await service.createUser();
      service.upstream?.setFaults({ latencyMs: 200 });
      try {
        const before = chatCalls();
        const entries = Array.from({ length: 16 }, (_, i) => ({
          type: "summarize",
          input: `doomed ${Date.now()} ${i}`,
        }));
        const accepted = await service.call("POST", "/requests/batch", {
          key: doomed.key,
          body: { requests: entries },
        });
        assert.equal(accepted.status, 202, accepted.text);
        const disabled = await service.call("PATCH", `/admin/users/${doomed.id}`, {
          key: service.adminKey,
          body: { disabled: true },
        });
        assert.equal(disabled.status, 200, disabled.text);

        const admin = (path: string) => service.call("GET", path, { key: service.adminKey });
        const deadline = Date.now() + 20_000;
        let page = await admin(`/admin/requests?limit=100&user_id=${doomed.id}`);
        while (page.body.data.some((r: { status: string }) => r.status === "queued" || r.status === "running")) {
          assert.ok(Date.now() < deadline, "every request of the batch finishes");
          await delay(100);
          page = await admin(`/admin/requests?limit=100&user_id=${doomed.id}`);
        }
        const rows = page.body.data as Array<{ status: string; error: { code: string } | null }>;
        assert.equal(rows.length, 16);
        const refused = rows.filter((r) => r.status === "failed" && r.error?.code === "user_disabled").length;
        const completed = rows.filter((r) => r.status === "completed").length;
        assert.ok(refused > 0, "requests not started when the user was disabled do not run");
        assert.equal(refused + completed, 16);
        assert.equal(chatCalls() - before, completed, "only those that ran were called");
      } finally {
        service.upstream?.setFaults({ latencyMs: 0 });
      }
    });

    test("a queued request whose job is gone (given up, deleted) is found by the sweeper and queued again", async () => {
      // An instance that accepts but runs nothing, so the request stays queued while its job is taken away.
      const idle = await startTestService({
        backend: setup.backend,
        redis: setup.redis,
        env: { QUEUE_CONCURRENCY: "0" },
      });
      try {
        const owner = await idle.createUser();
        const accepted = await idle.call("POST", "/requests", {
          key: owner.key,
          body: { type: "summarize", input: `orphan ${Date.now()}` },
          headers: { prefer: "respond-async" },
        });
        assert.equal(accepted.status, 202, accepted.text);
        const id = accepted.body.id as string;
        const { database, orphanSweeper } = idle.running.services;
        const jobsOf = async () =>
          (
            await database.executeSql(
              "select state from pgboss.job where data->>'requestId' = $1 and state in ('created', 'retry', 'active')",
              [id],
            )
          ).rows.length;
        assert.equal(await jobsOf(), 1);
        assert.deepEqual(await orphanSweeper.sweep(0), [], "a request with its job is not an orphan");

        await database.executeSql("delete from pgboss.job where data->>'requestId' = $1", [id]);
        assert.deepEqual(await orphanSweeper.sweep(0), [id]);
        assert.equal(await jobsOf(), 1, "a new job");

        // Running under a job that no longer exists (it failed for good): back to queued, with a new job.
        await database.executeSql("delete from pgboss.job where data->>'requestId' = $1", [id]);
        await database.executeSql("update requests set status = 'running', run_token = 'gone' where id = $1", [id]);
        assert.deepEqual(await orphanSweeper.sweep(0), [id]);
        assert.equal(await jobsOf(), 1);
        const now = await idle.call("GET", `/requests/${id}`, { key: owner.key });
        assert.equal(now.body.status, "queued");
      } finally {
        await idle.close();
      }
    });

    test("a queued request larger than its user's whole tpm is stored failed at once: waiting cannot help", async () => {
      const created = await service.call("POST", "/admin/users", {
        key: service.adminKey,
        body: { email: `tiny-tpm-${setup.backend}-${Date.now()}@example.com`, limits: { tpm: 10 } },
      });
      assert.equal(created.status, 201, created.text);
      const key = (
        await service.call("POST", `/admin/users/${created.body.id}/keys`, { key: service.adminKey, body: {} })
      ).body.key as string;
      const before = chatCalls();
      const accepted = await service.call("POST", "/requests", {
        key,
        body: { type: "summarize", input: "A text a good deal longer than ten tokens, which is all a minute allows." },
        headers: { prefer: "respond-async" },
      });
      assert.equal(accepted.status, 202, accepted.text);
      const done = await settled(service, key, accepted.body.id);
      assert.equal(done.status, "failed");
      assert.equal(done.error.code, "tpm_limit_too_small");
      assert.equal(chatCalls(), before, "never called");
    });

    test("a queued request the upstream fails is stored failed, not retried by the queue", async () => {
      service.upstream?.setFaults({ failNext: [{ status: 400 }] });
      const accepted = await service.call("POST", "/requests", {
        key: user.key,
        body: { type: "chat", input: `will fail ${Date.now()}`, cache: false },
        headers: { prefer: "respond-async" },
      });
      assert.equal(accepted.status, 202, accepted.text);
      const done = await settled(service, user.key, accepted.body.id);
      assert.equal(done.status, "failed", JSON.stringify(done));
      assert.ok(done.error, "the error is stored");
    });
  });
}
