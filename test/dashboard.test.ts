/**
 * The web dashboard in a real browser (Debian's Chromium), served by the service from its own build: signing in
 * with a key the browser never keeps, the overview's charts, the request list and its filters, the playground's
 * streamed answer, a user's keys, what a user may not see and what an admin may do, sessions ended by revoking the
 * key or signing out, and cross-site calls refused. Every page is photographed in light and dark
 * (test-results/screenshots/) and checked for named controls and labelled charts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Browser, Locator, Page, Response } from "playwright-core";
import {
  errorsOf,
  eventually,
  launchBrowser,
  newPage,
  type PageOptions,
  screenshot,
  type TestPage,
  unnamedControls,
} from "./helpers/browser.ts";
import { startTestService, type TestService } from "./helpers/service.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** `node scripts/build.mjs`, which bundles the dashboard into dist/dashboard; the service routes what exists at start. */
function buildDashboard(): void {
  const build = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: root, encoding: "utf8", timeout: 180_000 });
  if (build.status !== 0) {
    const output = `${build.stdout ?? ""}${build.stderr ?? ""}`.trim().split("\n").slice(-40).join("\n");
    throw new Error(`node scripts/build.mjs failed (exit ${build.status ?? build.signal}):\n${output}`);
  }
  const index = join(root, "dist", "dashboard", "index.html");
  if (!existsSync(index)) throw new Error(`node scripts/build.mjs succeeded but did not write ${index}`);
}

type User = { id: string; key: string; keyId: string };

describe("the web dashboard in Chromium", () => {
  let service: TestService;
  let browser: Browser;
  let user: User;
  /** Made through the API before the browser opens: a summarize request (POST /requests) and a chat completion. */
  let summarize: { id: string; output: string };
  let chat: { id: string };
  const pages: TestPage[] = [];
  /** The user's signed-in page (1280×800, light, clipboard allowed), shared by the user's flows to keep them quick. */
  let userSession: TestPage | undefined;

  before(async () => {
    buildDashboard();
    service = await startTestService({ provider: "builtin" });
    browser = await launchBrowser();
    user = await service.createUser();

    const made = await service.call("POST", "/requests", {
      key: user.key,
      body: { type: "summarize", input: "The quarterly report shows revenue grew while costs stayed flat." },
    });
    assert.equal(made.status, 201, made.text);
    summarize = { id: made.body.id, output: made.body.output };
    const completion = await service.call("POST", "/v1/chat/completions", {
      key: user.key,
      body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello from the dashboard test." }] },
    });
    assert.equal(completion.status, 200, completion.text);
    const chats = await service.call("GET", "/requests?type=chat&limit=1", { key: user.key });
    assert.equal(chats.body.data.length, 1, chats.text);
    chat = { id: chats.body.data[0].id };
  });

  after(async () => {
    for (const { context } of pages) await context.close().catch(() => {});
    await browser?.close();
    await service?.close();
  });

  /** A fresh browser context (its own cookies and storage) on the dashboard's sign-in page, closed after the file. */
  async function open(options: PageOptions = {}): Promise<TestPage> {
    const opened = await newPage(browser, options);
    pages.push(opened);
    await opened.page.goto(`${service.url}/`);
    return opened;
  }

  const keyField = (page: Page) => page.getByLabel("API key", { exact: true });
  const link = (page: Page, name: string) => page.getByRole("link", { name, exact: true });
  const button = (page: Page, name: string) => page.getByRole("button", { name, exact: true });

  /** Waits for a locator to be visible, failing with what the user was expecting to see. */
  async function shows(locator: Locator, what: string, timeout?: number): Promise<void> {
    try {
      await locator.first().waitFor({ state: "visible", timeout });
    } catch (error) {
      const errors = errorsOf(locator.page());
      const why = errors.length > 0 ? ` (errors in the page: ${errors.join("; ")})` : "";
      assert.fail(`expected to see ${what}: ${(error as Error).message.split("\n")[0]}${why}`);
    }
  }

  /** The user's shared signed-in page, opened and signed in on first use; its page errors are those of this test. */
  async function asUser(): Promise<TestPage> {
    if (!userSession) {
      const opened = await open({ clipboard: true });
      await signIn(opened.page, user.key);
      userSession = opened;
    }
    userSession.errors.length = 0;
    return userSession;
  }

  /** Signs in through the form, as a person does: the session answer is 201 and the form goes away. */
  async function signIn(page: Page, key: string): Promise<void> {
    await shows(keyField(page), 'the sign-in field "API key"');
    await keyField(page).fill(key);
    const answer = page.waitForResponse(
      (response) => response.request().method() === "POST" && new URL(response.url()).pathname === "/auth/session",
    );
    await button(page, "Sign in").click();
    const response = await answer;
    assert.equal(response.status(), 201, `POST /auth/session: ${await response.text()}`);
    await keyField(page).waitFor({ state: "detached" });
  }

  /** The next answer to a call whose path is `path` (and whose method is `method`). */
  const nextResponse = (page: Page, path: string | RegExp, method = "GET"): Promise<Response> =>
    page.waitForResponse((response) => {
      const url = new URL(response.url());
      const matches = typeof path === "string" ? url.pathname === path : path.test(url.pathname + url.search);
      return matches && response.request().method() === method;
    });

  /** The session cookie as the browser holds it. */
  async function sessionCookie(opened: TestPage) {
    const cookie = (await opened.context.cookies(service.url)).find((entry) => entry.name === "arh_session");
    assert.ok(cookie, "the browser holds an arh_session cookie after signing in");
    return cookie;
  }

  /** The text of each body row's cell under the column headed `header`, in the table that has that column. */
  function column(page: Page, header: string): Promise<string[]> {
    return page
      .locator("table")
      .filter({ has: page.getByRole("columnheader", { name: header, exact: true }) })
      .first()
      .evaluate((table, name) => {
        const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent?.trim() ?? "");
        const at = headers.indexOf(name);
        return [...table.querySelectorAll<HTMLTableRowElement>("tbody tr")]
          .filter((row) => row.cells.length === headers.length)
          .map((row) => row.cells[at]?.textContent?.trim() ?? "");
      }, header);
  }

  /** The "Details" link of one request in the list. */
  const detailsOf = (page: Page, id: string) =>
    link(page, "Details").and(page.locator(`a[href$="/requests/${encodeURIComponent(id)}"]`));

  /** Whether `text` is on the page, as text or as a field's value. */
  const pageShows = (page: Page, text: string) =>
    page.evaluate(
      (wanted) =>
        (document.body.textContent ?? "").includes(wanted) ||
        [...document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input, textarea")].some(
          (field) => field.value === wanted,
        ),
      text,
    );

  /** Uncaught errors in the page, or its code failing to load, fail the test that drove it. */
  function noPageErrors(opened: TestPage): void {
    assert.deepEqual(opened.errors, [], "errors in the page");
  }

  /**
   * The overview shows a chart of requests drawn with data: inside a role="img" container whose aria-label mentions
   * requests, an svg of chart size with at least one visible bar, area or line (a path or rect with a size, outside
   * clip paths and definitions).
   */
  const requestChartDrawn = (page: Page) =>
    page.evaluate(() =>
      [...document.querySelectorAll('[role="img"][aria-label]')].some(
        (container) =>
          /requests/i.test(container.getAttribute("aria-label") ?? "") &&
          [...container.querySelectorAll("svg")].some((svg) => {
            const frame = svg.getBoundingClientRect();
            if (frame.width < 100 || frame.height < 60) return false; // a legend's icon, not the chart
            return [...svg.querySelectorAll("path, rect")].some((shape) => {
              if (shape.closest("defs, clipPath, mask, pattern")) return false;
              const box = shape.getBoundingClientRect();
              return box.width > 0 && box.height > 0;
            });
          }),
      ),
    );

  /**
   * The accessibility smoke check of one page: every visible input, select and textarea has an accessible name,
   * every chart (a chart-sized svg or canvas) sits in a role="img" container with a non-empty aria-label, and every
   * role="img" container is labelled. Returns what is wrong, empty when nothing is.
   */
  async function accessibilityProblems(page: Page, where: string): Promise<string[]> {
    const problems: string[] = [];
    for (const control of await unnamedControls(page)) problems.push(`${where}: a control without a name: ${control}`);
    const charts = await page.locator("svg, canvas").evaluateAll((elements) =>
      elements
        .filter((element) => {
          const box = element.getBoundingClientRect();
          return box.width >= 100 && box.height >= 60 && !element.parentElement?.closest("svg");
        })
        .map((element) => {
          const container = element.closest('[role="img"]');
          return {
            html: element.outerHTML.slice(0, 100),
            label: container ? (container.getAttribute("aria-label") ?? "").trim() : null,
          };
        }),
    );
    for (const chart of charts) {
      if (chart.label === null) problems.push(`${where}: a chart outside any role="img" container: ${chart.html}`);
      else if (chart.label === "") problems.push(`${where}: a chart whose role="img" container has no aria-label`);
    }
    const unlabelled = await page
      .locator('[role="img"]')
      .evaluateAll((elements) =>
        elements
          .filter((element) => !(element.getAttribute("aria-label") ?? "").trim())
          .map((element) => element.outerHTML.slice(0, 100)),
      );
    for (const html of unlabelled) problems.push(`${where}: a role="img" element without an aria-label: ${html}`);
    return problems;
  }

  test("signing in shows the overview with a chart of requests drawn from data; the key stays out of the browser", async () => {
    const opened = await open({ clipboard: true });
    const { page } = opened;
    const overview = nextResponse(page, "/me/overview");
    await signIn(page, user.key);
    userSession = opened;

    const answer = await overview;
    assert.equal(
      answer.status(),
      200,
      `the overview's data, GET /me/overview, answered ${answer.status()}: ${(await answer.text()).slice(0, 200)}`,
    );
    await shows(page.getByRole("heading", { name: "Overview", level: 1 }), 'the "Overview" heading');
    await shows(page.getByRole("combobox", { name: "Range", exact: true }), 'the "Range" select');
    await eventually(async () => assert.ok(await requestChartDrawn(page), "a chart of requests drawn with data"));

    const stored = await page.evaluate(() =>
      JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }),
    );
    assert.ok(!stored.includes(user.key), "the API key is in neither localStorage nor sessionStorage");
    assert.ok(!(await pageShows(page, user.key)), "the API key is not left on the page");
    const cookie = await sessionCookie(opened);
    assert.equal(cookie.httpOnly, true, "the session cookie is httpOnly");
    assert.equal(cookie.sameSite, "Strict", "the session cookie is SameSite=Strict");
    assert.notEqual(cookie.value, user.key);
    assert.ok(!(await page.evaluate(() => document.cookie)).includes("arh_session"), "scripts cannot read the cookie");
    noPageErrors(opened);
  });

  test("Requests lists the API's requests, filters by type, and a request's details reveal its output", async () => {
    const opened = await asUser();
    const { page } = opened;
    await link(page, "Requests").click();
    await shows(detailsOf(page, summarize.id), "the summarize request made through the API, with its Details link");
    await shows(detailsOf(page, chat.id), "the chat completion made through the API, with its Details link");
    for (const cost of await column(page, "Cost")) assert.match(cost, /^\$\d+\.\d+$/, "costs read in US dollars");

    const filtered = nextResponse(page, /^\/requests\?.*type=summarize/);
    await page.getByRole("combobox", { name: "Type", exact: true }).selectOption("summarize");
    assert.equal((await filtered).status(), 200);
    await eventually(async () => {
      const types = await column(page, "Type");
      assert.ok(types.length > 0, "the filtered list is not empty");
      assert.deepEqual([...new Set(types)], ["summarize"], "only summarize requests are listed");
      assert.equal(await detailsOf(page, chat.id).count(), 0, "the chat request is filtered out");
    });

    await detailsOf(page, summarize.id).click();
    await shows(button(page, "Show output"), 'the "Show output" button');
    const timings = page.getByRole("img", { name: /^Where its time went/ });
    await shows(timings, "where the request's time went");
    assert.match(
      (await timings.getAttribute("aria-label")) ?? "",
      /Limits and cache lookup [\d.]+ ms, Upstream \(\w+\) [\d.]+ ms, Other service work [\d.]+ ms/,
    );
    assert.equal(
      await page.getByText(summarize.output).filter({ visible: true }).count(),
      0,
      "the output stays hidden until asked for",
    );
    await button(page, "Show output").click();
    await shows(page.getByText(summarize.output), "the request's output text");
    noPageErrors(opened);
  });

  test("the Playground streams a summary into the live region, links to the request, and the request is listed", async () => {
    const opened = await asUser();
    const { page } = opened;
    await link(page, "Playground").click();
    await page.getByRole("combobox", { name: "Type", exact: true }).selectOption("summarize");
    await page.getByRole("combobox", { name: "Model", exact: true }).selectOption("gpt-4o");
    await page.getByRole("textbox", { name: "Input", exact: true }).fill("Streaming summaries arrive in small pieces.");
    await page.getByRole("checkbox", { name: "Stream", exact: true }).check();

    const sent = nextResponse(page, "/requests", "POST");
    await button(page, "Run").click();
    const response = await sent;
    assert.equal(response.status(), 201, "POST /requests from the playground");
    assert.match(response.headers()["content-type"] ?? "", /^text\/event-stream/, "the answer is streamed");

    const live = page.locator('[aria-live="polite"]');
    await eventually(async () =>
      assert.match((await live.textContent()) ?? "", /Mock answer/, "streamed text in the live region"),
    );
    const view = link(page, "View request");
    await shows(view, 'the "View request" link once the answer is complete');
    const id = decodeURIComponent(/\/requests\/([^/?#]+)$/.exec((await view.getAttribute("href")) ?? "")?.[1] ?? "");
    assert.match(id, /^req_/, "View request links to the new request");
    const stored = await service.call("GET", `/requests/${id}`, { key: user.key });
    assert.equal(stored.status, 200, stored.text);
    assert.equal(stored.body.type, "summarize");
    assert.equal(stored.body.model, "gpt-4o", "the model picked in the playground");
    assert.ok(
      ((await live.textContent()) ?? "").includes(stored.body.output),
      "the live region holds the whole stored output",
    );

    await link(page, "Requests").click();
    await shows(detailsOf(page, id), "the playground's request in the Requests list");
    noPageErrors(opened);
  });

  test("Keys: a new key is shown once with Copy, listed, and once revoked is shown revoked and refused by the API", async () => {
    const opened = await asUser();
    const { page } = opened;
    await link(page, "Keys").click();
    const name = `browser-${Date.now().toString(36)}`;
    await page.getByRole("textbox", { name: "Name", exact: true }).fill(name);
    await page.getByRole("spinbutton", { name: "Requests per minute", exact: true }).fill("5");
    const created = nextResponse(page, "/me/keys", "POST");
    await button(page, "Create key").click();
    assert.equal((await created).status(), 201, "POST /me/keys");

    await shows(button(page, "Copy"), 'the new key with a "Copy" button');
    await button(page, "Copy").click();
    const key = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(key, /^arh_/, '"Copy" puts the new key on the clipboard');
    assert.ok(await pageShows(page, key), "the new key is shown");
    assert.equal((await service.call("GET", "/me", { key })).status, 200, "the new key works");
    const mine = await service.call("GET", "/me/keys", { key: user.key });
    const made = mine.body.data.find((entry: { name: string | null }) => entry.name === name);
    assert.equal(made?.limits.rpm, 5, "the key has the requests-per-minute limit given in the form");

    const row = page.getByRole("row").filter({ hasText: name });
    await shows(row, "the new key in the list");
    await page.reload();
    await shows(row, "the new key in the list after a reload");
    assert.ok(!(await pageShows(page, key)), "the key is shown only once: not after a reload");

    const revoked = nextResponse(page, /^\/me\/keys\/[^/]+$/, "DELETE");
    await row.getByRole("button", { name: "Revoke", exact: true }).click();
    // A confirmation step, when the page asks for one, is part of revoking.
    const confirm = row.getByRole("button", { name: /^confirm/i });
    const first = await Promise.race([
      revoked.then(() => "revoked"),
      confirm.waitFor().then(
        () => "confirm",
        () => "none",
      ),
    ]);
    if (first === "confirm") await confirm.click();
    assert.equal((await revoked).status(), 200, "DELETE /me/keys/{id}");
    await eventually(async () => {
      assert.equal(await row.getByRole("button", { name: "Revoke", exact: true }).count(), 0, "no Revoke button left");
      const names = await column(page, "Name");
      const when = (await column(page, "Revoked"))[names.findIndex((text) => text.includes(name))];
      assert.ok(when && when !== "—", `the key's "Revoked" column shows when (it shows ${JSON.stringify(when)})`);
    });
    assert.equal((await service.call("GET", "/me", { key })).status, 401, "the revoked key is refused");
    noPageErrors(opened);
  });

  test("a user sees no admin view or data: no Users link, /#/users is not allowed, /admin/users is 403", async () => {
    const opened = await asUser();
    const { page } = opened;
    const adminCalls: string[] = [];
    const listen = (response: Response) => {
      const path = new URL(response.url()).pathname;
      if (path.startsWith("/admin/") && response.status() < 400) adminCalls.push(`${path} ${response.status()}`);
    };
    page.on("response", listen);
    await page.goto(`${service.url}/#/`);
    await shows(link(page, "Overview"), 'the "Overview" link');
    assert.equal(await link(page, "Users").count(), 0, "no Users link for a user");

    await page.goto(`${service.url}/#/users`);
    await shows(page.getByText("Not allowed"), '"Not allowed" on /#/users');
    const status = await page.evaluate(() =>
      fetch("/admin/users", { credentials: "same-origin" }).then((r) => r.status),
    );
    assert.equal(status, 403, "fetch('/admin/users') from the page");
    page.off("response", listen);
    assert.deepEqual(adminCalls, [], "no admin data reached the page");
    noPageErrors(opened);
  });

  test("an admin (the operator's key) sees Users and creates a user", async () => {
    const opened = await open();
    const { page } = opened;
    await signIn(page, service.adminKey);
    await link(page, "Users").click();
    const email = `made-in-browser-${Date.now().toString(36)}@example.com`;
    await page.getByRole("textbox", { name: "Email", exact: true }).fill(email);
    const created = nextResponse(page, "/admin/users", "POST");
    await button(page, "Create user").click();
    const answer = await created;
    assert.equal(answer.status(), 201, `POST /admin/users: ${await answer.text()}`);
    await shows(page.getByText(email), "the new user's email on the Users page");
    const listed = await service.call("GET", "/admin/users?limit=100", { key: service.adminKey });
    assert.ok(
      listed.body.data.some((entry: { email: string }) => entry.email === email),
      "the user exists in the service",
    );
    noPageErrors(opened);
  });

  test("revoking the key a session was opened with ends it: the next load shows sign-in", async () => {
    const other = await service.createUser();
    const opened = await open();
    const { page } = opened;
    await signIn(page, other.key);
    await shows(link(page, "Overview"), "the signed-in dashboard");
    const revoked = await service.call("DELETE", `/admin/keys/${other.keyId}`, { key: service.adminKey });
    assert.ok(revoked.status < 300, `DELETE /admin/keys/{id}: ${revoked.status} ${revoked.text}`);
    await page.reload();
    await shows(keyField(page), "the sign-in page after the key was revoked");
    assert.equal(await link(page, "Overview").count(), 0, "no signed-in navigation left");
    noPageErrors(opened);
  });

  test("Sign out returns to sign-in and the old cookie no longer works", async () => {
    const opened = await open();
    const { page } = opened;
    await signIn(page, user.key);
    const cookie = await sessionCookie(opened);
    await button(page, "Sign out").click();
    await shows(keyField(page), "the sign-in page after signing out");
    assert.equal(
      (await opened.context.cookies(service.url)).find((entry) => entry.name === "arh_session"),
      undefined,
      "the browser dropped the cookie",
    );
    const old = await service.call("GET", "/auth/session", { headers: { cookie: `arh_session=${cookie.value}` } });
    assert.equal(old.status, 401, "GET /auth/session with the old cookie");
    noPageErrors(opened);
  });

  test("a change sent with the session cookie from another site is refused with 403", async () => {
    const cookie = `arh_session=${(await sessionCookie(await asUser())).value}`;
    const origin = new URL(service.url).origin;
    const foreign = await service.call("POST", "/me/keys", {
      body: { name: "cross-site" },
      headers: { cookie, origin: "https://evil.example" },
    });
    assert.equal(foreign.status, 403, foreign.text);
    const own = await service.call("POST", "/me/keys", { body: { name: "same-site" }, headers: { cookie, origin } });
    assert.equal(own.status, 201, `the same call from the dashboard's own origin works: ${own.text}`);
    await service.call("DELETE", `/me/keys/${own.body.id}`, { headers: { cookie, origin } });
  });

  test("every page in light and dark at 1280×800: screenshots, named controls, labelled charts", async () => {
    const problems: string[] = [];
    const shots: string[] = [];
    for (const scheme of ["light", "dark"] as const) {
      const opened = await open({ colorScheme: scheme, timeoutMs: 5_000 });
      const { page } = opened;
      /** Waits for the page to be ready, then photographs and checks it; a failure is noted and the tour goes on. */
      const visit = async (name: string, ready: () => Promise<void>) => {
        try {
          await ready();
        } catch (error) {
          problems.push(`${name} (${scheme}): ${(error as Error).message.split("\n")[0]}`);
        }
        shots.push(await screenshot(page, `${name}-${scheme}`));
        problems.push(...(await accessibilityProblems(page, `${name} (${scheme})`)));
      };
      const heading = (name: string) => shows(page.getByRole("heading", { name, level: 1 }), `the "${name}" heading`);

      await visit("sign-in", () => shows(keyField(page), 'the "API key" field'));
      await signIn(page, user.key);
      await visit("overview", async () => {
        await heading("Overview");
        await eventually(async () => assert.ok(await requestChartDrawn(page), "a chart of requests drawn"), 5_000);
      });
      await page.goto(`${service.url}/#/requests`);
      await visit("requests", async () => {
        await heading("Requests");
        await shows(detailsOf(page, summarize.id), "the summarize request in the list");
      });
      await page.goto(`${service.url}/#/requests/${summarize.id}`);
      await visit("request-detail", async () => {
        await shows(button(page, "Show output"), 'the "Show output" button');
        await button(page, "Show output").click();
        await shows(page.getByText(summarize.output), "the output");
      });
      await page.goto(`${service.url}/#/playground`);
      await visit("playground", async () => {
        await heading("Playground");
        await page.getByRole("textbox", { name: "Input", exact: true }).fill("Screenshots show the answer too.");
        await button(page, "Run").click();
        await shows(link(page, "View request"), "the answer and its View request link");
      });
      await page.goto(`${service.url}/#/keys`);
      await visit("keys", async () => {
        await heading("Keys");
        await shows(button(page, "Revoke"), "the user's key with a Revoke button");
      });
      await button(page, "Sign out").click();
      await signIn(page, service.adminKey);
      await page.goto(`${service.url}/#/users`);
      await visit("users", async () => {
        await heading("Users");
        await shows(button(page, "Create user"), 'the "Create user" button');
        await shows(page.getByText(user.id).or(page.getByText(/@example\.com/)), "the users listed");
      });
      problems.push(...opened.errors.map((error) => `error in the page (${scheme}): ${error}`));
    }
    assert.deepEqual(problems, [], `problems found on the pages (screenshots: ${shots.join(", ")})`);
  });

  test("on a 375×812 phone the overview fits the screen and the navigation opens from the Menu button", async () => {
    const opened = await open({ width: 375, height: 812 });
    const { page } = opened;
    await signIn(page, user.key);
    await shows(page.getByRole("heading", { name: "Overview", level: 1 }), 'the "Overview" heading');
    await shows(page.locator('[role="img"], [role="alert"]'), "the overview's charts (or why they are missing)");
    const path = await screenshot(page, "overview-375x812");
    const problems = await accessibilityProblems(page, "overview (375×812)");
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `the page scrolls sideways: ${width}px wide on a 375px screen (${path})`);
    await shows(button(page, "Menu"), 'the "Menu" button');
    await button(page, "Menu").click();
    await shows(link(page, "Requests"), 'the "Requests" link after opening the menu');
    await link(page, "Requests").click();
    await shows(page.getByRole("heading", { name: "Requests", level: 1 }), "the Requests view");
    problems.push(...(await accessibilityProblems(page, "requests (375×812)")));
    assert.deepEqual(problems, []);
    noPageErrors(opened);
  });
});
