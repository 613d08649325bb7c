import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { writeFixture } from "../support/fixture-intersection.js";
import { isRootFor } from "../support/tools.js";
import { buildOnce, CLI } from "./cli.js";
import { captureOutput, cleanupProcesses, dirs, interruptTwice, type Proc, start } from "./processes.js";

/**
 * A serial module that cannot be opened: the gateway says which device, why, and what to do — a
 * missing device is the adapter or its name, a denied one is the dialout group — not "link is down".
 */

const NOBODY = 65534;
const isRoot = isRootFor("the permission-denied serial link test (it runs the gateway as nobody)");

function fixtureOn(path: string) {
  const fixture = writeFixture(`{ serial: "${path}" }`);
  dirs.push(fixture.dir);
  return fixture;
}

const openFailure = (proc: Proc) =>
  proc.lines.find((l) => String(l.msg).startsWith("cannot open a module link"))?.msg as string | undefined;

describe("a serial module link that cannot be opened", () => {
  beforeAll(buildOnce, 180_000);
  afterEach(cleanupProcesses);

  it("names the missing device and says to check the adapter and use its by-id link", async () => {
    const missing = "/dev/ttyGREENWAVE-missing";
    const fixture = fixtureOn(missing);
    const gateway = start(["gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir]);
    const line = await until("the open failure", 15_000, () => openFailure(gateway));
    expect(line).toContain(missing);
    expect(line).toContain("no such device");
    expect(line).toContain("/dev/serial/by-id/");
  }, 30_000);

  it.skipIf(!isRoot)(
    "as a user outside the dialout group: permission denied, and how to fix it",
    async () => {
      // A device node the service user may not open (mode 0600, root's), as /dev/ttyUSB0 is to a user
      // outside dialout. Root opens anything, so the gateway runs as nobody.
      const dir = mkdtempSync(join(tmpdir(), "greenwave-denied-"));
      dirs.push(dir);
      chmodSync(dir, 0o755);
      const device = join(dir, "ttyUSB0");
      writeFileSync(device, "");
      chmodSync(device, 0o600);
      const fixture = fixtureOn(device);
      chmodSync(fixture.dir, 0o777);
      const child = spawn(
        process.execPath,
        [CLI, "gateway", "--config", fixture.intersection, "--data-dir", fixture.dataDir],
        { uid: NOBODY, gid: NOBODY, stdio: ["ignore", "pipe", "pipe"] },
      );
      const proc: Proc = { child, out: "", lines: [] };
      captureOutput(child, proc);
      try {
        const line = await until("the open failure", 15_000, () => openFailure(proc));
        expect(line).toContain(device);
        expect(line).toContain("permission denied");
        expect(line).toContain("dialout");
      } finally {
        if (child.exitCode === null && child.signalCode === null) await interruptTwice(child);
      }
    },
    30_000,
  );
});
