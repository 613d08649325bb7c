import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";

const CLI = "dist/gateway/cli/main.js";

beforeAll(() => {
  if (!existsSync(CLI)) {
    const build = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
  }
}, 180_000);

describe("npm start (greenwave demo)", () => {
  it("runs the example corridor: start-up flash, all-red, then every intersection sequencing its plan", () => {
    const run = spawnSync("node", [CLI, "demo", "--duration", "12"], { encoding: "utf8", timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    for (const id of ["elm", "oak", "pine", "cedar"]) {
      expect(out).toMatch(new RegExp(`${id}\\s+startup\\s+off-peak\\s+.*M:r\\*`));
      expect(out).toMatch(new RegExp(`${id}\\s+mode startup -> (transition|coordinated)`));
    }
    // elm enters its first stage (main: Main St green, pedestrians crossing Elm Ave walk) after 10 s.
    expect(out).toMatch(/elm\s+(transition|coordinated)\s+off-peak\s+main\s+M:G\s+S:r\s+PS:W\s+PM:dw/);
    expect(out).toContain("demo stopped");
  }, 40_000);

  it("stops cleanly on Ctrl-C", async () => {
    const child = spawn("node", [CLI, "demo"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    await new Promise<void>((ready) => {
      const poll = setInterval(() => {
        if (out.includes("startup")) {
          clearInterval(poll);
          ready();
        }
      }, 50);
    });
    child.kill("SIGINT");
    const code = await new Promise<number | null>((done) => child.on("exit", (c) => done(c)));
    expect(code).toBe(0);
    expect(out).toContain("demo stopped");
  }, 30_000);
});
