import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../simulators/fixtures/mqtt-corridor.js";
import { readModuleState } from "../support/lamp-history.js";
import { hasTool } from "../support/tools.js";
import { buildOnce } from "./cli.js";
import { cleanupProcesses, exampleConfigCopy, start, stop } from "./processes.js";

beforeAll(() => buildOnce(), 180_000);
afterEach(() => cleanupProcesses());

const haveSumo =
  hasTool("netconvert", "the live demo against SUMO", "sumo") &&
  hasTool("sumo", "the live demo against SUMO", "sumo");

describe.runIf(haveSumo)("npm start -- --traffic: the live demo against SUMO", () => {
  it("the modules' lamps drive SUMO's signals in real time and SUMO's stop-bar loops drive the modules' inputs; Ctrl-C stops both", async () => {
    const corridor = await exampleConfigCopy();
    const demo = start([
      ...["demo", "--corridor", corridor, "--port", "0", "--http-port", "0", "--console-port", "0"],
      ...["--quiet", "--no-schedule", "--traffic", "config/demand/am-peak.yaml"],
    ]);
    await until("the demo", 40_000, () => demo.out.includes("legend:"));
    expect(demo.out).toMatch(
      /traffic {5}SUMO 1\.\d+\.\d+, demand am-peak, stepped with the wall clock every 100 ms/,
    );
    const loops = /traffic {5}elm: loops (.+?) → input (\d+)/.exec(demo.out);
    expect(loops, demo.out).not.toBeNull();
    const channel = Number(loops?.[2]);
    const control = /simulator\s+elm\/io1 (http:\/\/\S+)\/state/.exec(demo.out)?.[1] as string;
    // Vehicles queue on elm's side-street stop-bar loops while its lamps hold them at red: the input
    // of the detector that calls the side street (elm.yaml: S-loops, input 16) turns on.
    const deadline = performance.now() + 60_000;
    let seen = false;
    while (!seen && performance.now() < deadline) {
      const state = await readModuleState(control);
      const inputs = (state as unknown as { inputs: string }).inputs;
      seen = inputs[channel] === "1";
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(seen, "a detector input of elm's module turned on").toBe(true);
    expect(await stop(demo)).toBe(0);
    expect(demo.out).toContain("demo stopped");
    expect(demo.out).not.toMatch(/the traffic simulation stopped/);
  }, 150_000);
});
