import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { freePort } from "../../simulators/fixtures/ports.js";
import { writeFixture } from "../support/fixture-intersection.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs, start, stop } from "./processes.js";

/**
 * The store of a running gateway is the gateway's: `fault clear` (an offline tool) refuses it, as does a
 * second gateway on the same store; once the gateway has stopped, both work.
 */
describe("a store in use by a running gateway", () => {
  beforeAll(buildOnce, 180_000);
  afterEach(cleanupProcesses);

  it("refuses fault clear and a second gateway while it runs, and takes them once it has stopped", async () => {
    // Nothing listens on the module's port: the gateway latches device-lost, a fault to clear.
    const fixture = writeFixture(`{ tcp: "127.0.0.1:${await freePort()}" }`);
    dirs.push(fixture.dir);
    const args = ["--data-dir", fixture.dataDir];
    const gateway = start(["gateway", "--config", fixture.intersection, ...args]);
    await until("the device-lost fault", 20_000, () =>
      gateway.lines.find((l) => String(l.msg).startsWith("FAULT latched")),
    );

    const clear = cli(["fault", "clear", "--intersection", "x1", "--by", "tess", ...args]);
    expect(clear.status).toBe(1);
    expect(clear.stderr).toContain(`is running (pid ${gateway.child.pid})`);
    expect(clear.stderr).toContain("greenwave fault reset");

    const second = cli(["gateway", "--config", fixture.intersection, ...args]);
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`another gateway (pid ${gateway.child.pid}) runs on the store`);

    expect(await stop(gateway)).toBe(0);
    const after = cli(["fault", "clear", "--intersection", "x1", "--by", "tess", ...args]);
    expect(after.status, after.stderr).toBe(0);
    expect(after.stdout).toContain("cleared device-lost at x1");
  }, 60_000);
});
