import { createServer, type Server } from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeFixture } from "../support/fixture-intersection.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, cli, dirs } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);

const held: Server[] = [];
afterEach(async () => {
  for (const server of held.splice(0)) await new Promise<void>((done) => server.close(() => done()));
  await cleanupProcesses();
});

/** Holds a loopback port, as another program would. */
async function busyPort(): Promise<number> {
  const server = createServer();
  held.push(server);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", () => done()));
  return (server.address() as { port: number }).port;
}

describe("a port another program holds is the user's problem, said plainly (exit 1, no stack trace)", () => {
  const refused = (run: ReturnType<typeof cli>, address: string, option: string) => {
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toContain(`${address}: the port is in use`);
    expect(run.stderr).toContain(option);
    expect(run.stderr).not.toContain("    at ");
  };

  it("sim io-module: names --tcp or --control, whichever is busy", async () => {
    const port = await busyPort();
    refused(cli(["sim", "io-module", "--tcp", String(port), "--control", "0"]), `127.0.0.1:${port}`, "--tcp");
    refused(
      cli(["sim", "io-module", "--tcp", "0", "--control", String(port)]),
      `127.0.0.1:${port}`,
      "--control",
    );
  }, 30_000);

  it("broker: names --port", async () => {
    const port = await busyPort();
    refused(cli(["broker", "--port", String(port)]), `127.0.0.1:${port}`, "--port");
  }, 30_000);

  it("broker: names --http when its metrics port is busy, and does not stay up half started", async () => {
    const port = await busyPort();
    // cli() kills a command after 20 s: one that kept its MQTT listener open would time out here.
    const run = cli(["broker", "--port", "0", "--http", `127.0.0.1:${port}`]);
    expect(run.signal).toBeNull();
    refused(run, `127.0.0.1:${port}`, "--http");
  }, 30_000);

  it("console: names --http", async () => {
    const port = await busyPort();
    const run = cli(["console", "--http", `127.0.0.1:${port}`, "--broker", "mqtt://127.0.0.1:1"]);
    expect(run.signal).toBeNull();
    refused(run, `127.0.0.1:${port}`, "--http");
  }, 30_000);

  it("gateway: names --http", async () => {
    const port = await busyPort();
    const nowhere = await busyPort(); // no Modbus module answers there: the gateway starts regardless
    const fixture = writeFixture(`{ tcp: "127.0.0.1:${nowhere}" }`);
    dirs.push(fixture.dir);
    const run = cli([
      "gateway",
      "--config",
      fixture.intersection,
      "--data-dir",
      fixture.dataDir,
      "--http",
      `127.0.0.1:${port}`,
    ]);
    refused(run, `127.0.0.1:${port}`, "--http");
  }, 30_000);
});
