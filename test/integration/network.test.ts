import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadCorridor, loadIntersection, loadPlan } from "../../gateway/config/load.js";
import type { Aspect } from "../../gateway/core/model.js";
import { loadDemand } from "../../gateway/config/load-demand.js";
import {
  buildCorridorNetwork,
  type CorridorNetwork,
  signalState,
} from "../../simulators/traffic/network/index.js";
import { parseNetFile } from "../../simulators/traffic/network/net-file.js";
import { hasTool } from "../support/tools.js";

/**
 * The example corridor's network, built by netconvert from config/ with each demand file, read back
 * (link indices, loops) and run by sumo for a simulated minute without TraCI.
 */
const haveSumo =
  hasTool("netconvert", "the SUMO network tests", "sumo") &&
  hasTool("sumo", "the SUMO network tests", "sumo");

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function build(demandFile: string): Promise<CorridorNetwork> {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-net-"));
  dirs.push(dir);
  const corridor = loadCorridor("config/corridor.yaml");
  const intersections = [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file));
  return buildCorridorNetwork(corridor, intersections, loadDemand(demandFile, corridor), dir, { seed: 7 });
}

/** Runs sumo to the end and returns its exit code and everything it wrote. */
function runSumo(args: readonly string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("sumo", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-200_000)));
    child.stderr.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-200_000)));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe.runIf(haveSumo)("the corridor as a SUMO network", () => {
  it.each(["config/demand/am-peak.yaml", "config/demand/off-peak.yaml"])(
    "netconvert builds it for %s; every traffic light's link count is links.length; every loop is on a lane",
    async (demandFile) => {
      const network = await build(demandFile);
      const netText = readFileSync(network.netFile, "utf8");
      const net = parseNetFile(netText);
      expect(network.lights.map((l) => l.tlsId)).toEqual(["elm", "oak", "pine", "cedar"]);
      for (const light of network.lights) {
        expect(net.stateLengths.get(light.tlsId), light.tlsId).toBe(light.links.length);
        // Every movement of the junction is there, and the crossings of its pedestrian groups.
        const movements = new Set(light.links.map((l) => l.movement));
        expect(movements.size, light.tlsId).toBe(12 + 4);
      }
      const additional = readFileSync(network.additionalFile, "utf8");
      const loopLanes = [...additional.matchAll(/<inductionLoop id="([^"]+)" lane="([^"]+)" pos="([^"]+)"/g)];
      expect(loopLanes.map((m) => m[1])).toEqual(network.loops.map((l) => l.id));
      for (const [, id, lane, pos] of loopLanes) {
        const length = net.laneLengths.get(lane as string);
        expect(length, `${id} on ${lane}`).toBeDefined();
        expect(Number(pos)).toBeGreaterThan(0);
        expect(Number(pos)).toBeLessThan(length as number);
      }
      const advance = network.loops.filter((l) => l.purpose === "advance");
      // Two through lanes on each main-street approach of four intersections.
      expect(advance).toHaveLength(4 * 2 * 2);
      for (const loop of advance) {
        expect(loop.distanceToStopLineM).toBeGreaterThanOrEqual(100);
        expect(loop.distanceToStopLineM).toBeLessThanOrEqual(150);
      }
      expect(network.corridorLengthM).toBe(300 + 350 + 420 + 300 + 300);
    },
  );

  it("sumo runs the generated files for 60 simulated seconds without an error, a collision or a teleport", async () => {
    const network = await build("config/demand/am-peak.yaml");
    const { code, output } = await runSumo(
      [
        "--net-file",
        network.netFile,
        "--route-files",
        network.routesFile,
        "--additional-files",
        network.additionalFile,
        "--begin",
        "0",
        "--end",
        "60",
        "--seed",
        "3",
        "--no-step-log",
        "true",
        "--duration-log.statistics",
        "true",
        "--collision.action",
        "warn",
      ],
      network.dir,
    );
    expect(code, output).toBe(0);
    expect(output).not.toMatch(/Error/);
    expect(output).not.toMatch(/[Tt]eleport/);
    expect(output).not.toMatch(/[Cc]ollision/);
    const inserted = /Inserted: (\d+)/.exec(output);
    expect(Number(inserted?.[1]), output).toBeGreaterThan(10);
  }, 60_000);

  it("the am-peak plan's stages, as signalState shows them, run 5 minutes of am-peak traffic with no collision at a junction", async () => {
    const network = await build("config/demand/am-peak.yaml");
    const plan = loadPlan("config/plans/am-peak.yaml").raw;
    // A fixed-time programme per traffic light from the plan's stages: go for the split less the
    // clearances, then the ending groups' yellow (or flashing DON'T WALK), then their red clearance.
    const programmes = network.lights.map((light) => {
      const loaded = loadIntersection(`config/intersections/${light.intersectionId}.yaml`);
      const groups = loaded.raw.groups.map((g) => g.id);
      const kinds = loaded.raw.groups.map((g) => g.kind);
      const part = plan.intersections[light.intersectionId];
      if (part === undefined) throw new Error(`no plan part for ${light.intersectionId}`);
      const phases: string[] = [];
      for (const stage of part.stages) {
        const go = (g: number): Aspect => (kinds[g] === "vehicle" ? "green" : "walk");
        const clear = (g: number): Aspect => (kinds[g] === "vehicle" ? "yellow" : "ped-clearance");
        const stop = (g: number): Aspect => (kinds[g] === "vehicle" ? "red" : "dont-walk");
        const served = (g: number) => stage.groups.includes(groups[g] as string);
        const state = (aspect: (g: number) => Aspect) =>
          signalState(
            light,
            groups.map((_, g) => (served(g) ? aspect(g) : stop(g))),
          );
        phases.push(`    <phase duration="${stage.splitSeconds - 6}" state="${state(go)}"/>`);
        phases.push(`    <phase duration="4" state="${state(clear)}"/>`);
        phases.push(`    <phase duration="2" state="${state(stop)}"/>`);
      }
      return `  <tlLogic id="${light.tlsId}" programID="plan" offset="${part.offsetSeconds}" type="static">\n${phases.join("\n")}\n  </tlLogic>`;
    });
    const programmeFile = join(network.dir, "plan.add.xml");
    writeFileSync(programmeFile, `<additional>\n${programmes.join("\n")}\n</additional>\n`);
    const { code, output } = await runSumo(
      [
        "--net-file",
        network.netFile,
        "--route-files",
        network.routesFile,
        "--additional-files",
        `${network.additionalFile},${programmeFile}`,
        "--end",
        "300",
        "--seed",
        "5",
        "--no-step-log",
        "true",
        "--duration-log.statistics",
        "true",
        "--collision.check-junctions",
        "true",
        "--collision.action",
        "warn",
      ],
      network.dir,
    );
    expect(code, output).toBe(0);
    expect(output).not.toMatch(/Error/);
    expect(output).not.toMatch(/[Cc]ollision/);
    expect(output).not.toMatch(/[Tt]eleport/);
    expect(Number(/Inserted: (\d+)/.exec(output)?.[1]), output).toBeGreaterThan(100);
  }, 60_000);
});
