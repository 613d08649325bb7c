import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { hasTool } from "./tools.js";

/**
 * The system's Chromium (Debian's `chromium`), driven by playwright-core: no browser is ever
 * downloaded. Tests that need it skip loudly without it (and fail under GREENWAVE_REQUIRE_ALL_TESTS=1).
 */
export const CHROMIUM = process.env.GREENWAVE_CHROMIUM ?? "/usr/bin/chromium";

/** Where the browser tests write their screenshots (gitignored). */
export const ARTIFACTS = "test-artifacts/console";

export function hasChromium(why: string): boolean {
  return hasTool(CHROMIUM, why, "chromium");
}

export interface RunningBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

/**
 * Headless, sandbox off (root in CI), no network of its own, a fresh profile each time (playwright
 * makes a new temporary --user-data-dir for every launch and removes it; it refuses one in `args`).
 */
export async function launchChromium(): Promise<RunningBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    close: async () => await browser.close(),
  };
}

/** A page of the size of a landscape tablet, with the page's own errors kept for the test to check. */
export async function openPage(
  running: RunningBrowser,
  url: string,
): Promise<{ page: Page; errors: string[] }> {
  const context = await running.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  await page.goto(url);
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Polls an async probe (a page query) every 250 ms until it gives a value. */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
