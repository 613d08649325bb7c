import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkConfigFile, checkPlanForIntersection } from "../../gateway/config/check.js";
import { formatIssue } from "../../gateway/config/errors.js";
import { dailySyncUtcMs } from "../../gateway/config/load.js";

/**
 * Every file in config/broken/ carries one mistake and says, in its header, how to check it
 * (`# check: config` or `# check: plan INTERSECTION`) and what the error must say (`# expect: …`).
 */
const BROKEN = "config/broken";
const files = readdirSync(BROKEN)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

function header(file: string, key: string): string {
  const line = readFileSync(join(BROKEN, file), "utf8")
    .split("\n")
    .find((l) => l.startsWith(`# ${key}: `));
  if (!line) throw new Error(`${file} has no "# ${key}:" header`);
  return line.slice(`# ${key}: `.length);
}

describe("deliberately broken config files", () => {
  it("there are enough of them to mean something", () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
  });

  it.each(files)("%s is rejected with the expected message, located in the file", (file) => {
    const check = header(file, "check");
    const path = join(BROKEN, file);
    const report =
      check === "config"
        ? checkConfigFile(path)
        : checkPlanForIntersection(join(BROKEN, check.replace(/^plan /, "")), path);
    const messages = report.issues.map(formatIssue);
    expect(messages.length, `no issue reported for ${file}`).toBeGreaterThan(0);
    expect(messages.join("\n")).toContain(header(file, "expect"));
    const located = report.issues.find((i) => i.file.endsWith(file));
    expect(located?.line, `${file}: issue without a line number`).toBeGreaterThan(0);
  });
});

describe("the example configuration", () => {
  it("passes every check: 4 intersections, both plans compiled for each", () => {
    const report = checkConfigFile("config/corridor.yaml");
    expect(report.issues.map(formatIssue)).toEqual([]);
    expect(report.checked.filter((l) => l.startsWith("intersection "))).toHaveLength(4);
    for (const plan of ["am-peak", "off-peak"]) {
      expect(report.checked.filter((l) => l.startsWith(`plan ${plan} `))).toHaveLength(4);
    }
  });

  it.each(readdirSync("config/devices").map((f) => join("config/devices", f)))(
    "device profile %s is valid",
    (file) => {
      expect(checkConfigFile(file).issues).toEqual([]);
    },
  );
});

describe("daily sync point", () => {
  it("converts local time at a UTC offset to milliseconds after 00:00 UTC", () => {
    expect(dailySyncUtcMs("02:00:00", "+00:00")).toBe(2 * 3_600_000);
    expect(dailySyncUtcMs("02:00:00", "+01:00")).toBe(1 * 3_600_000);
    expect(dailySyncUtcMs("00:30:00", "+01:00")).toBe(23.5 * 3_600_000);
    expect(dailySyncUtcMs("23:00:00", "-05:00")).toBe(4 * 3_600_000);
  });
});
