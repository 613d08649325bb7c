import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, startDemoCorridor } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

/**
 * `greenwave plan cancel` as an operator runs it, against the demo's corridor (processes, the embedded
 * broker): a plan pushed an hour ahead is taken back at every intersection; a second cancel, a
 * malformed id and an id nobody knows are refused, saying why.
 */
describe("greenwave plan cancel", () => {
  it("takes back a change pushed ahead, through the two-phase commit; refuses what it cannot cancel", async () => {
    const { fixture, broker } = await startDemoCorridor();
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-cancel-e2e-"));
    dirs.push(dataDir);
    const common = [
      "--corridor",
      fixture.corridor,
      "--broker",
      broker,
      "--as",
      "alice",
      "--data-dir",
      dataDir,
    ];
    const at = new Date(Date.now() + 3600_000).toISOString();
    const push = cli([
      "plan",
      "push",
      ...common,
      "--plan",
      join(fixture.plans, "next.yaml"),
      "--at",
      at,
      "--json",
    ]);
    expect(push.status, push.stderr).toBe(0);
    const { txnId } = JSON.parse(push.stdout) as { txnId: string };

    const cancel = cli(["plan", "cancel", ...common, "--txn", txnId]);
    expect(cancel.status, cancel.stderr).toBe(0);
    expect(cancel.stdout).toMatch(new RegExp(`^COMMITTED: cancel of transaction ${txnId} on corridor `));
    expect(cancel.stdout).toContain("will not take effect anywhere");
    expect(cancel.stdout).toMatch(/x1\s+yes/);

    const again = cli(["plan", "cancel", ...common, "--txn", txnId, "--json"]);
    expect(again.status).toBe(1);
    const refused = JSON.parse(again.stdout) as { outcome: string; reason: string };
    expect(refused.outcome).toBe("aborted");
    expect(refused.reason).toMatch(new RegExp(`${txnId} was already cancelled at x\\d by transaction`));

    const malformed = cli(["plan", "cancel", ...common, "--txn", "not an id!"]);
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).toContain("--txn must be a transaction id");
    const unknown = cli(["plan", "cancel", ...common, "--txn", "alice-nobody-knows"]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("no decision record of transaction alice-nobody-knows");
  }, 90_000);
});
