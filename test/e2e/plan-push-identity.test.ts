import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { startBroker } from "../../gateway/broker/broker.js";
import { loadPlan } from "../../gateway/config/load.js";
import { planDigest } from "../../gateway/config/plan-digest.js";
import { shortDigest } from "../../gateway/core/corridor/plan-identity.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { startCorridorNodes, until } from "../../simulators/fixtures/mqtt-corridor.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, start } from "./processes.js";

/**
 * `greenwave plan push` as an operator runs it (issue 19, item 4): a plan edited but pushed again under
 * the same version is refused — the command says which intersection refused, why and what to do, and
 * exits non-zero. The gateways run in this process (the command is a process of its own, so the test
 * waits for it without blocking them).
 */

beforeAll(() => buildOnce(), 180_000);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await cleanupProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function run(args: string[]): Promise<{ code: number | null; out: string }> {
  const proc = start(args);
  const code = await new Promise<number | null>((resolve) => proc.child.once("exit", resolve));
  return { code, out: proc.out };
}

describe("greenwave plan push of edited content under a known version", () => {
  it("aborts, saying to raise the version, and exits 1; the first content pushed again commits", async () => {
    const fixture = writeCorridorFixture(2);
    cleanups.push(() => rmSync(fixture.dir, { recursive: true, force: true }));
    const broker = await startBroker({ host: "127.0.0.1", port: 0, users: null });
    cleanups.push(() => broker.close());
    const corridor = await startCorridorNodes(broker.url, { corridorFile: fixture.corridor });
    cleanups.push(() => corridor.stop());
    await until("both gateways online", 10_000, () =>
      [...corridor.nodes.values()].every((n) => n.mqttConnected),
    );
    const logDir = mkdtempSync(join(tmpdir(), "greenwave-push-identity-"));
    cleanups.push(() => rmSync(logDir, { recursive: true, force: true }));
    const file = join(fixture.plans, "next.yaml");
    const push = () =>
      run([
        "plan",
        "push",
        "--corridor",
        fixture.corridor,
        "--plan",
        file,
        "--broker",
        broker.url,
        "--as",
        "alice",
        "--data-dir",
        logDir,
        "--lead-s",
        "3",
        "--ack-timeout-s",
        "3",
      ]);

    const written = readFileSync(file, "utf8");
    const digest = shortDigest(planDigest(loadPlan(file).raw));
    const first = await push();
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`COMMITTED: next v1 (digest ${digest}) on corridor test-corridor`);

    writeFileSync(
      file,
      written
        .replaceAll("splitSeconds: 21 }", "splitSeconds: 22 }")
        .replaceAll("splitSeconds: 19 }", "splitSeconds: 18 }"),
    );
    const edited = await push();
    expect(edited.code, edited.out).toBe(1);
    expect(edited.out).toContain("ABORTED: next v1");
    expect(edited.out).toMatch(
      new RegExp(
        `reason: x\\d voted no: plan next version 1 is already known here with different content \\(digest ${digest}…`,
      ),
    );
    expect(edited.out).toContain("raise the version to push changed content");

    writeFileSync(file, written);
    const again = await push();
    expect(again.code, again.out).toBe(0);
  }, 60_000);
});
