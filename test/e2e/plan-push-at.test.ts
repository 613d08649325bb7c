import { beforeAll, describe, expect, it } from "vitest";
import { buildOnce } from "./cli.js";
import { cli } from "./processes.js";

/**
 * `plan push --at`: an instant in the past was silently moved to the earliest boundary, and one in the
 * year 2999 was committed and held a place for waiting plans for good. Both are refused before anything
 * is sent (exit 2, no broker needed), saying why.
 */
const push = (at: string) =>
  cli([
    "plan",
    "push",
    "--corridor",
    "config/corridor.yaml",
    "--plan",
    "config/plans/am-peak.yaml",
    "--at",
    at,
  ]);

describe("plan push --at", () => {
  beforeAll(buildOnce, 180_000);

  it("refuses an instant in the past", () => {
    const result = push("2020-01-01T00:00:00Z");
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("--at: the activation instant 2020-01-01T00:00:00.000Z is in the past");
  });

  it("refuses an instant more than a day ahead", () => {
    const result = push("2999-01-01T00:00:00Z");
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("is more than 24 h ahead");
  });
});
