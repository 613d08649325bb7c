import { request } from "node:http";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLink } from "../../devices/modbus/link.js";
import { ModuleClient } from "../../devices/modbus/module-client.js";
import { registerSimCommands } from "../../gateway/cli/sim.js";
import { UsageError } from "../../gateway/cli/usage-error.js";
import { loadDeviceProfile } from "../../gateway/config/load.js";
import { type RunningSimulator, startSimulator } from "../../simulators/io-module/simulator.js";

/**
 * Detector inputs of the simulated module, set through its control API (PUT /inputs) or by its arrival
 * process, read back as a gateway reads them: Modbus FC02 over TCP on loopback, with the gateway's own
 * Modbus client.
 */

const PROFILE = "config/devices/generic-do32-di32.yaml";
const { profile } = loadDeviceProfile(PROFILE);

interface Answer {
  status: number;
  body: { error?: string | string[]; detectorInputs?: Record<string, boolean>; inputs?: string } & Record<
    string,
    unknown
  >;
}

/** One control request; `body` as is (a string goes unchanged: JSON with keys JSON.stringify won't make). */
async function control(port: number, method: string, path: string, body?: unknown): Promise<Answer> {
  const answer = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: answer.status, body: (await answer.json()) as Answer["body"] };
}

/** A body sent in chunks without a content-length (chunked), so only counting its bytes can refuse it. */
function putChunked(port: number, path: string, bytes: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "PUT" }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer["body"] }));
    });
    // The server may close once it has answered: a write after that is no failure of the test.
    req.on("error", reject);
    const chunk = `{"16": true, ${" ".repeat(1000)}`;
    let sent = 0;
    const more = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", more);
      }
      req.end("}");
    };
    more();
  });
}

describe("PUT /inputs on the simulated module", () => {
  let sim: RunningSimulator;
  let link: ReturnType<typeof openLink>;
  let client: ModuleClient;
  let controlPort: number;
  const inputs = () => client.readInputs(0, 32);

  beforeAll(async () => {
    sim = await startSimulator({ profile, unitId: 1, host: "127.0.0.1", tcpPort: 0, controlPort: 0 });
    controlPort = sim.controlPort as number;
    link = openLink({ kind: "tcp", host: "127.0.0.1", port: sim.modbusPort as number });
    await link.open();
    client = new ModuleClient(link, "io1", 1, 500, 1);
  });
  afterAll(async () => {
    await link?.close();
    await sim?.stop();
  });

  it("sets detector inputs that a Modbus master reads with FC02, and GET /state shows them", async () => {
    expect(await inputs()).toEqual(Array(32).fill(false));
    const put = await control(controlPort, "PUT", "/inputs", { "16": true, "17": false, "20": true });
    expect(put.status).toBe(200);
    expect(put.body.detectorInputs).toEqual({ "16": true, "17": false, "20": true });
    const read = await inputs();
    expect(read.flatMap((on, n) => (on ? [n] : []))).toEqual([16, 20]);
    const state = await control(controlPort, "GET", "/state");
    expect(state.body.detectorInputs).toEqual({ "16": true, "17": false, "20": true });
    expect(state.body.inputs).toBe(read.map((on) => (on ? 1 : 0)).join(""));
    // Only the channels named change.
    await control(controlPort, "PUT", "/inputs", { "16": false });
    expect((await inputs()).flatMap((on, n) => (on ? [n] : []))).toEqual([20]);
  });

  it("sets a lamp-feedback input too (the simulator does not know the wiring), and null gives it back", async () => {
    await client.writeCoils(0, [false, false, true]);
    expect((await inputs())[2]).toBe(true); // the lamp's current
    expect((await control(controlPort, "PUT", "/inputs", { "2": false })).status).toBe(200);
    expect((await inputs())[2]).toBe(false);
    const released = await control(controlPort, "PUT", "/inputs", { "2": null, "20": null });
    expect(released.status).toBe(200);
    expect(released.body.detectorInputs).not.toHaveProperty("2");
    expect(released.body.detectorInputs).not.toHaveProperty("20");
    const read = await inputs();
    expect(read[2]).toBe(true);
    expect(read[20]).toBe(false);
    await client.writeCoils(0, [false, false, false]);
  });

  it.each([
    ['{"x": true}', /"x": not an input channel/],
    ['{"-1": true}', /"-1": not an input channel/],
    ['{"1.5": true}', /"1.5": not an input channel/],
    ['{"016": true}', /"016": not an input channel/],
    ['{"": true}', /"": not an input channel/],
    ['{"32": true}', /input channel 32: outside this module's discrete inputs 0–31/],
    ['{"99999999999": true}', /not an input channel/],
    ['{"__proto__": true}', /"__proto__": refused, not an input channel/],
    ['{"constructor": true}', /"constructor": refused, not an input channel/],
    ['{"16": "yes"}', /input channel 16: "yes" is not true, false or null/],
    ['{"16": 1}', /input channel 16: 1 is not true, false or null/],
    ['{"16": {"on": true}}', /input channel 16: {"on":true} is not true, false or null/],
    ["[true]", /the body must be a JSON object/],
    ["null", /the body must be a JSON object/],
    ["true", /the body must be a JSON object/],
  ])("refuses %s with 400, naming the channel and what is wrong", async (body, message) => {
    const answer = await control(controlPort, "PUT", "/inputs", body);
    expect(answer.status).toBe(400);
    expect(([] as string[]).concat(answer.body.error ?? []).join("\n")).toMatch(message);
  });

  it("refuses a body that is not JSON, and changes nothing when one channel of several is wrong", async () => {
    expect(await control(controlPort, "PUT", "/inputs", "{16: true")).toMatchObject({
      status: 400,
      body: { error: "body is not JSON" },
    });
    const answer = await control(
      controlPort,
      "PUT",
      "/inputs",
      '{"16": true, "40": true, "__proto__": false}',
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error).toHaveLength(2);
    const state = await control(controlPort, "GET", "/state");
    expect(state.body.detectorInputs).toEqual({ "16": false, "17": false });
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it("refuses a body over 16 KiB with 413, by its length or by counting, and still answers after", async () => {
    const big = JSON.stringify({ "16": true, pad: "x".repeat(17_000) });
    const declared = await control(controlPort, "PUT", "/inputs", big);
    expect(declared.status).toBe(413);
    expect(declared.body.error).toMatch(/body over 16384 bytes/);
    const counted = await putChunked(controlPort, "/inputs", 40_000);
    expect(counted.status).toBe(413);
    expect((await control(controlPort, "PUT", "/faults", big)).status).toBe(413);
    expect((await control(controlPort, "GET", "/state")).body.detectorInputs).toEqual({
      "16": false,
      "17": false,
    });
    expect((await control(controlPort, "PUT", "/inputs", { "17": true })).status).toBe(200);
  });
});

describe("the simulated module with --arrivals", () => {
  it("drives its detector inputs, read over FC02, and counts them in GET /state", async () => {
    const sim = await startSimulator({
      profile,
      unitId: 1,
      host: "127.0.0.1",
      tcpPort: 0,
      controlPort: 0,
      arrivals: { specs: [{ channel: 16, ratePerHour: 7_200, kind: "vehicle" }], seed: 4 },
    });
    const link = openLink({ kind: "tcp", host: "127.0.0.1", port: sim.modbusPort as number });
    try {
      await link.open();
      const client = new ModuleClient(link, "io1", 1, 500, 1);
      const seen = new Set<boolean>();
      const until = performance.now() + 15_000;
      while (seen.size < 2 && performance.now() < until) {
        const read = await client.readInputs(0, 32);
        seen.add(read[16] as boolean);
        expect(read.filter((on, n) => on && n !== 16)).toEqual([]);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toEqual(new Set([true, false]));
      const state = await control(sim.controlPort as number, "GET", "/state");
      expect(state.body.arrivals).toMatchObject({ presses: 0 });
      expect((state.body.arrivals as { arrivals: number }).arrivals).toBeGreaterThan(0);
      expect(sim.arrivals?.counters.arrivals).toBeGreaterThan(0);
    } finally {
      await link.close();
      await sim.stop();
    }
    expect(sim.model.detectorInputs.get(16)).toBe(false);
  });

  it("refuses specs that do not fit the module before it listens", async () => {
    await expect(
      startSimulator({
        profile,
        unitId: 1,
        host: "127.0.0.1",
        tcpPort: 0,
        controlPort: 0,
        arrivals: { specs: [{ channel: 32, ratePerHour: 60, kind: "vehicle" }], seed: 1 },
      }),
    ).rejects.toThrow(/arrivals: input channel 32 is outside this module's discrete inputs 0–31/);
  });
});

describe("greenwave sim io-module --arrivals", () => {
  /** The command as main.ts runs it, without a process: what it throws. */
  async function run(...args: string[]): Promise<unknown> {
    const program = new Command().exitOverride();
    registerSimCommands(program);
    return program
      .parseAsync(["sim", "io-module", "--profile", PROFILE, "--tcp", "0", ...args], { from: "user" })
      .then(
        () => null,
        (error: unknown) => error,
      );
  }

  it.each([
    [["--arrivals", "16,17"], /--arrivals "16,17": channels 16,17 at the end have no @RATE/],
    [["--arrivals", "16@fast"], /--arrivals "16@fast": "@fast" is not a rate/],
    [
      ["--arrivals", "40@60"],
      /--arrivals "40@60": input channel 40 is outside this module's discrete inputs 0–31/,
    ],
    [["--arrivals", "16@60", "--arrivals", "17@60"], /--arrivals given 2 times: give it once/],
    [["--arrivals", "16@60", "--seed", "x"], /--seed must be a whole number/],
  ])("%j: a usage error saying what is wrong", async (args, message) => {
    const error = await run(...args);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });
});
