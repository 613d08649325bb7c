/**
 * The TraCI client against the real SUMO: a tiny network written here (one traffic-light junction, one
 * induction loop, one or two vehicles), through netconvert into a temporary directory.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SumoProcess, TraciError, startSumo } from "../../simulators/traffic/traci/index.js";
import { hasTool } from "../support/tools.js";

const haveSumo =
  hasTool("sumo", "the TraCI client against the real SUMO") &&
  hasTool("netconvert", "the TraCI client against the real SUMO (its test network)", "sumo");

/** SUMO's tools validate XML against schemas under SUMO_HOME (else fetched from the web, or failing offline). */
const sumoEnv = { ...process.env, SUMO_HOME: process.env.SUMO_HOME ?? "/usr/share/sumo" };

/**
 * A cross: W→C→E (the main street, 400 m) and N→C→S, C a traffic light. Vehicle v0 drives W→E at 0 s
 * (and v1 N→S at 30 s with `twoVehicles`); loop "loopCE" lies on CE's lane 30 m past the junction.
 */
function writeNetwork(dir: string, { twoVehicles = false } = {}): string[] {
  writeFileSync(
    join(dir, "net.nod.xml"),
    `<nodes>
  <node id="W" x="-200" y="0" type="priority"/>
  <node id="C" x="0" y="0" type="traffic_light"/>
  <node id="E" x="200" y="0" type="priority"/>
  <node id="N" x="0" y="200" type="priority"/>
  <node id="S" x="0" y="-200" type="priority"/>
</nodes>
`,
  );
  writeFileSync(
    join(dir, "net.edg.xml"),
    `<edges>
  <edge id="WC" from="W" to="C" numLanes="1" speed="13.89"/>
  <edge id="CE" from="C" to="E" numLanes="1" speed="13.89"/>
  <edge id="NC" from="N" to="C" numLanes="1" speed="13.89"/>
  <edge id="CS" from="C" to="S" numLanes="1" speed="13.89"/>
</edges>
`,
  );
  execFileSync(
    "netconvert",
    [
      "--node-files=net.nod.xml",
      "--edge-files=net.edg.xml",
      "--no-turnarounds",
      "--output-file=net.net.xml",
      "--no-warnings",
    ],
    { cwd: dir, env: sumoEnv, stdio: ["ignore", "ignore", "pipe"] },
  );
  writeFileSync(
    join(dir, "routes.rou.xml"),
    `<routes>
  <vType id="car" length="5" maxSpeed="13.89" accel="2.6" decel="4.5" sigma="0"/>
  <route id="we" edges="WC CE"/>
  <route id="ns" edges="NC CS"/>
  <vehicle id="v0" type="car" route="we" depart="0" departSpeed="max"/>
${twoVehicles ? '  <vehicle id="v1" type="car" route="ns" depart="30" departSpeed="max"/>\n' : ""}</routes>
`,
  );
  writeFileSync(
    join(dir, "loops.add.xml"),
    `<additional>
  <inductionLoop id="loopCE" lane="CE_0" pos="30" period="60" file="loops.xml"/>
</additional>
`,
  );
  return [
    "--net-file=net.net.xml",
    "--route-files=routes.rou.xml",
    "--additional-files=loops.add.xml",
    "--step-length=0.1",
    "--no-step-log",
    "--seed=1",
  ];
}

describe.skipIf(!haveSumo)("TraCI client against SUMO", () => {
  let dir: string;
  let args: string[];
  const started: SumoProcess[] = [];

  const start = async (extra: readonly string[] = [], cwd = dir): Promise<SumoProcess> => {
    const sumo = await startSumo({ args: [...args, ...extra], cwd, timeoutMs: 5_000 });
    started.push(sumo);
    return sumo;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "greenwave-traci-"));
    args = writeNetwork(dir);
  });

  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.stop()));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("reports SUMO's version and TraCI API version", async () => {
    const { client } = await start();
    const version = await client.getVersion();
    expect(version.identifier).toMatch(/^SUMO /);
    // SUMO 1.x speaks API 20 and up; the commands used here exist in all of them.
    expect(version.apiVersion).toBeGreaterThanOrEqual(20);
    await client.setOrder(1);
  });

  it("steps the simulation: one step, to a target time, and says the time", async () => {
    const { client } = await start();
    expect(await client.simulationTime()).toBe(0);
    expect(await client.minExpectedNumber()).toBe(1);
    await client.simulationStep();
    expect(await client.simulationTime()).toBeCloseTo(0.1, 9);
    await client.simulationStep(5);
    expect(await client.simulationTime()).toBeCloseTo(5, 9);
    // A target in the past does nothing.
    await client.simulationStep(1);
    expect(await client.simulationTime()).toBeCloseTo(5, 9);
  });

  it("sets a traffic light's state and SUMO applies it", async () => {
    const { client } = await start();
    expect(await client.trafficLightIds()).toEqual(["C"]);
    const initial = await client.trafficLightGetState("C");
    expect(initial).toMatch(/^[rRgGyYoOus]+$/);
    const red = "r".repeat(initial.length);
    await client.trafficLightSetState("C", red);
    expect(await client.trafficLightGetState("C")).toBe(red);
    // It holds over steps (the program is now "online": SUMO no longer runs its own phases).
    await client.simulationStep(50);
    expect(await client.trafficLightGetState("C")).toBe(red);
    const mixed = initial.length === 1 ? "G" : `G${"r".repeat(initial.length - 2)}y`;
    await client.trafficLightSetState("C", mixed);
    await client.simulationStep();
    expect(await client.trafficLightGetState("C")).toBe(mixed);
  });

  it("an induction loop counts a vehicle and gives its data; red holds it back", async () => {
    const { client } = await start();
    expect(await client.inductionLoopIds()).toEqual(["loopCE"]);
    const links = (await client.trafficLightGetState("C")).length;
    // Red for 40 s: v0 (at the junction after ~15 s) waits, the loop past the junction sees nothing.
    await client.trafficLightSetState("C", "r".repeat(links));
    let seen = 0;
    for (let t = 1; t <= 40; t++) {
      await client.simulationStep(t);
      seen += await client.inductionLoopVehicleCount("loopCE");
    }
    expect(seen).toBe(0);
    await client.trafficLightSetState("C", "G".repeat(links));
    let data: Awaited<ReturnType<typeof client.inductionLoopVehicleData>> = [];
    let count = 0;
    let steps = 0;
    while (count === 0 && steps++ < 400) {
      await client.simulationStep();
      count = await client.inductionLoopVehicleCount("loopCE");
      if (count > 0) data = await client.inductionLoopVehicleData("loopCE");
    }
    expect(count).toBe(1);
    expect(data).toHaveLength(1);
    const [v] = data;
    expect(v?.vehicleId).toBe("v0");
    expect(v?.typeId).toBe("car");
    expect(v?.lengthM).toBeCloseTo(5, 9);
    const now = await client.simulationTime();
    expect(v?.entryTimeS).toBeGreaterThan(40);
    expect(v?.entryTimeS).toBeLessThanOrEqual(now);
    // Still on the loop (-1), or left within this step.
    expect(v?.leaveTimeS === -1 || (v?.leaveTimeS ?? 0) >= (v?.entryTimeS ?? 0)).toBe(true);
  });

  it("stepWith sets the states and steps in one message", async () => {
    const { client } = await start();
    const links = (await client.trafficLightGetState("C")).length;
    const red = "r".repeat(links);
    const green = "G".repeat(links);
    await client.stepWith(new Map([["C", red]]), 0);
    expect(await client.simulationTime()).toBeCloseTo(0.1, 9);
    expect(await client.trafficLightGetState("C")).toBe(red);
    await client.stepWith(new Map([["C", green]]), 2);
    expect(await client.simulationTime()).toBeCloseTo(2, 9);
    expect(await client.trafficLightGetState("C")).toBe(green);
    // No states: just the step.
    await client.stepWith(new Map(), 3);
    expect(await client.simulationTime()).toBeCloseTo(3, 9);
  });

  it("an unknown traffic light is a TraciError naming it, and the client stays usable", async () => {
    const { client } = await start();
    const error = await client.trafficLightGetState("nope").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TraciError);
    expect(error).toMatchObject({ kind: "refused", command: "trafficLightGetState", objectId: "nope" });
    expect((error as Error).message).toMatch(/trafficLightGetState on 'nope'.*nope/);

    const links = (await client.trafficLightGetState("C")).length;
    const inStep = await client
      .stepWith(
        new Map([
          ["C", "G".repeat(links)],
          ["ghost", "r"],
        ]),
        1,
      )
      .catch((e: unknown) => e);
    // The client asks for an unknown light's state (to learn its link count) before setting it: SUMO's refusal names it.
    expect(inStep).toBeInstanceOf(TraciError);
    expect(inStep).toMatchObject({ kind: "refused", objectId: "ghost" });
    expect((inStep as Error).message).toMatch(/'ghost'.*not known/);
    // SUMO 1.15 would take a state of the wrong length silently: the client refuses it, naming the light.
    await expect(client.trafficLightSetState("C", "G".repeat(links + 3))).rejects.toMatchObject({
      kind: "invalid",
      objectId: "C",
    });
    await expect(client.stepWith(new Map([["C", "G".repeat(links - 1)]]), 0)).rejects.toMatchObject({
      kind: "invalid",
      objectId: "C",
    });
    await expect(client.trafficLightSetState("C", "X".repeat(links))).rejects.toMatchObject({
      kind: "invalid",
    });
    // Nothing of a refused stepWith was sent; the client is still in step with SUMO.
    expect(client.isOpen).toBe(true);
    expect(await client.simulationTime()).toBe(0);
    await client.stepWith(new Map([["C", "G".repeat(links)]]), 0);
    expect(await client.trafficLightGetState("C")).toBe("G".repeat(links));
  });

  it("SUMO killed mid-run is a typed connection error, not a hang", async () => {
    const sumo = await start();
    const { client } = sumo;
    const running = (async () => {
      for (let i = 0; i < 1_000_000; i++) await client.simulationStep();
    })();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    sumo.process.kill("SIGKILL");
    const error = await running.catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(TraciError);
    expect(error).toMatchObject({ kind: "connection" });
    // Later calls fail at once, saying why.
    await expect(client.simulationTime()).rejects.toMatchObject({
      kind: "connection",
      command: "simulationTime",
    });
  });

  it("close ends SUMO: it exits by itself, with status 0", async () => {
    const sumo = await start();
    await sumo.client.simulationStep(1);
    await sumo.stop();
    expect(sumo.process.exitCode).toBe(0);
    expect(sumo.process.signalCode).toBeNull();
    expect(sumo.client.isOpen).toBe(false);
    await sumo.stop(); // idempotent
  });

  it("SUMO refusing to start is a TraciError with what SUMO said", async () => {
    const error = await startSumo({
      args: ["--net-file=missing.net.xml"],
      cwd: dir,
      connectWithinMs: 5_000,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TraciError);
    expect(error).toMatchObject({ kind: "connection", command: "connect" });
    expect((error as Error).message).toMatch(/sumo ended \(exit code 1\).*missing\.net\.xml/);
  });

  it("two vehicles: the loop data lists each once", async () => {
    const twoDir = mkdtempSync(join(tmpdir(), "greenwave-traci-two-"));
    try {
      const twoArgs = writeNetwork(twoDir, { twoVehicles: true });
      const sumo = await startSumo({ args: twoArgs, cwd: twoDir, timeoutMs: 5_000 });
      started.push(sumo);
      const { client } = sumo;
      expect(await client.minExpectedNumber()).toBe(2);
      const links = (await client.trafficLightGetState("C")).length;
      const seen = new Set<string>();
      for (let t = 0; t < 1200 && (await client.minExpectedNumber()) > 0; t++) {
        await client.stepWith(new Map([["C", "G".repeat(links)]]), 0);
        for (const v of await client.inductionLoopVehicleData("loopCE")) seen.add(v.vehicleId);
      }
      // v1 drives N→S and never crosses CE's loop.
      expect([...seen]).toEqual(["v0"]);
      expect(await client.minExpectedNumber()).toBe(0);
    } finally {
      await Promise.all(started.splice(0).map((s) => s.stop()));
      rmSync(twoDir, { recursive: true, force: true });
    }
  });
});
