import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's Chromium: the tests drive the system browser and never download one. */
export const chromiumPath = "/usr/bin/chromium";

export const screenshotDir = join("test-results", "screenshots");

/** Headless Chromium. Throws (the test fails, it is not skipped) when the browser is not installed. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: the dashboard tests need Chromium (apt-get install -y chromium)`);
  }
  // No sandbox: CI runs as root, where Chromium refuses to start with one. Small /dev/shm in containers: use /tmp.
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

export interface PageOptions {
  width?: number;
  height?: number;
  colorScheme?: "light" | "dark";
  /** Lets the page read and write the clipboard (a "Copy" button). */
  clipboard?: boolean;
  /** How long a locator or a wait may take before the test fails. Default 10 s. */
  timeoutMs?: number;
}

export interface TestPage {
  context: BrowserContext;
  page: Page;
  /**
   * What went wrong in the page so far: uncaught exceptions, and the page or its scripts and styles failing to load.
   * A broken view shows up here even when it still renders.
   */
  errors: string[];
}

const pageErrors = new WeakMap<Page, string[]>();

/** The errors of a page made by `newPage` (empty for any other), to explain a wait that timed out. */
export const errorsOf = (page: Page): string[] => pageErrors.get(page) ?? [];

/** A fresh context (its own cookies and storage) with one page, at the given viewport (default 1280×800, light). */
export async function newPage(browser: Browser, options: PageOptions = {}): Promise<TestPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    colorScheme: options.colorScheme ?? "light",
    reducedMotion: "reduce",
    locale: "en-US",
    timezoneId: "UTC",
  });
  context.setDefaultTimeout(options.timeoutMs ?? 10_000);
  if (options.clipboard) await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("response", (response) => {
    const kind = response.request().resourceType();
    if (response.status() >= 400 && (kind === "document" || kind === "script" || kind === "stylesheet")) {
      errors.push(`${kind} ${new URL(response.url()).pathname} answered ${response.status()}`);
    }
  });
  page.on("requestfailed", (request) => {
    const kind = request.resourceType();
    if (kind === "document" || kind === "script" || kind === "stylesheet") {
      errors.push(`${kind} ${new URL(request.url()).pathname} failed: ${request.failure()?.errorText ?? "unknown"}`);
    }
  });
  pageErrors.set(page, errors);
  return { context, page, errors };
}

/** Saves a full-page PNG as test-results/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true, animations: "disabled" });
  return path;
}

/** The roles of form controls (input, select, textarea and their ARIA equivalents). */
const controlRoles = "textbox|searchbox|spinbutton|combobox|listbox|checkbox|radio|switch|slider";
const unnamedControl = new RegExp(`^\\s*- (?:${controlRoles})(?: \\[[^\\]]*\\])*(?::.*)?$`);

/**
 * The visible form controls that have no accessible name, as the browser's accessibility tree holds them (lines of
 * Playwright's ARIA snapshot, `- textbox` where a named one reads `- textbox "Email"`). Empty when all are named.
 */
export async function unnamedControls(page: Page): Promise<string[]> {
  const snapshot = await page.locator("body").ariaSnapshot();
  return snapshot
    .split("\n")
    .filter((line) => unnamedControl.test(line))
    .map((line) => line.trim());
}

/** Runs `check` until it stops throwing, or rethrows its last error after `timeoutMs`: an assertion that waits. */
export async function eventually(check: () => Promise<void> | void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
