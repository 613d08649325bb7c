import type { LoadedCorridor, LoadedIntersection } from "../../gateway/config/load.js";
import type { LoadedDemand } from "../../gateway/config/load-demand.js";
import type { Intersection } from "../../gateway/core/model.js";
import { type ModuleLayout, observedLamps } from "../../devices/io-map.js";
import type { ModuleModel } from "../io-module/module-model.js";
import { type LampWatch, readAspects, startLampWatch } from "./lamp-aspects.js";
import {
  buildCorridorNetwork,
  type LoopDetector,
  signalState,
  type TrafficLightMap,
} from "./network/index.js";
import { stopBarLoopsByDetector } from "./loop-inputs.js";
import { startSumo, type SumoProcess } from "./traci/index.js";

/**
 * The live demo against traffic: SUMO runs in real time beside the demo's simulated I/O modules.
 * Every 100 ms each intersection's relay outputs (the module's coils, as its gateway wrote them over
 * Modbus) are read as lamps, then as aspects (lamp-aspects.ts: flashing is seen, as at the roadside),
 * and set on its SUMO traffic light; SUMO steps to the wall clock; each stop-bar loop's presence is
 * written to the discrete input of the intersection's detector that calls the loop's group (the loops
 * of one group share it, as several loops share one detector card's channel), where the gateway reads
 * it. The gateways, Modbus, MQTT and plan pushes run as always: only the lamps' other side changed.
 */

export const LIVE_STEP_MS = 100;

export interface LiveModules {
  readonly intersection: LoadedIntersection;
  /** The intersection's modules with the model behind each (the demo's in-process simulators). */
  readonly modules: readonly { readonly layout: ModuleLayout; readonly model: ModuleModel }[];
}

export interface LiveTraffic {
  /** What to print at start: SUMO's version, the demand, which input each loop drives. */
  readonly description: readonly string[];
  readonly counters: { steps: number; late: number; loopsOn: number };
  /** Each traffic light's state as SUMO has it now, by intersection id (read back through TraCI). */
  signals(): Promise<Record<string, string>>;
  /** The traffic lights' link roles, by intersection id: which group each character of a state shows. */
  readonly lights: ReadonlyMap<string, TrafficLightMap>;
  stop(): Promise<void>;
}

interface LiveSite {
  readonly intersection: Intersection;
  readonly light: TrafficLightMap;
  readonly modules: LiveModules["modules"];
  watch: LampWatch;
  /** Each detector input fed by loops: its module and channel, and the stop-bar loops on it. */
  readonly inputs: readonly {
    readonly model: ModuleModel;
    readonly channel: number;
    readonly loops: readonly string[];
  }[];
}

/** The detector inputs SUMO's stop-bar loops feed (loop-inputs.ts), each with its module and channel. */
function loopInputs(
  site: LiveModules,
  loops: readonly LoopDetector[],
): { inputs: LiveSite["inputs"]; unwired: number } {
  const setup = site.intersection;
  const fed = stopBarLoopsByDetector(setup.intersection, loops);
  const inputs: LiveSite["inputs"][number][] = [];
  fed.byDetector.forEach((ids, d) => {
    const wiring = setup.detectorWiring.find((w) => w.detector === d);
    const model = site.modules.find((m) => m.layout.deviceId === wiring?.deviceId)?.model;
    if (wiring && model && ids.length > 0) inputs.push({ model, channel: wiring.input, loops: ids });
  });
  return { inputs, unwired: fed.unwired.length };
}

export async function startLiveTraffic(options: {
  readonly corridor: LoadedCorridor;
  readonly sites: readonly LiveModules[];
  readonly demand: LoadedDemand;
  readonly dir: string;
  readonly seed?: number;
  readonly warn: (message: string) => void;
}): Promise<LiveTraffic> {
  const network = await buildCorridorNetwork(
    options.corridor,
    options.sites.map((s) => s.intersection),
    options.demand,
    options.dir,
    { seed: options.seed ?? 1 },
  );
  const description: string[] = [];
  const sites: LiveSite[] = options.sites.map((site) => {
    const intersection = site.intersection.intersection;
    const light = network.lights.find((l) => l.intersectionId === intersection.id);
    if (!light) throw new Error(`no traffic light for ${intersection.id} in the generated network`);
    const stopBars = network.loops
      .filter((l) => l.intersectionId === intersection.id && l.purpose === "stop-bar")
      .sort((a, b) => a.id.localeCompare(b.id));
    const { inputs, unwired } = loopInputs(site, stopBars);
    for (const input of inputs)
      description.push(`${intersection.id}: loops ${input.loops.join(", ")} → input ${input.channel}`);
    if (unwired > 0)
      description.push(
        `${intersection.id}: ${unwired} stop-bar loops call a group no detector of the intersection file calls (the coordinated Main St): not wired`,
      );
    return { intersection, light, modules: site.modules, watch: startLampWatch(intersection), inputs };
  });
  const sumo: SumoProcess = await startSumo({
    cwd: options.dir,
    args: [
      ...["-n", network.netFile, "-r", network.routesFile, "-a", network.additionalFile],
      ...["--step-length", String(LIVE_STEP_MS / 1000), "--seed", String(options.seed ?? 1)],
      ...["--no-step-log", "true", "--duration-log.disable", "true", "--time-to-teleport", "300"],
    ],
  });
  const version = (await sumo.client.getVersion()).identifier;
  description.unshift(
    `${version}, demand ${options.demand.raw.id}, stepped with the wall clock every ${LIVE_STEP_MS} ms`,
  );
  const counters = { steps: 0, late: 0, loopsOn: 0 };
  const started = performance.now();
  let stopping = false;
  const step = async (): Promise<void> => {
    const nowMs = performance.now();
    const states = new Map<string, string>();
    for (const site of sites) {
      const lamps = observedLamps(
        site.intersection,
        site.modules.map((m) => m.layout),
        site.modules.map((m) => m.model.coils),
      );
      const read = readAspects(site.intersection, site.watch, lamps, nowMs);
      site.watch = read.watch;
      states.set(site.light.tlsId, signalState(site.light, read.aspects));
    }
    // SUMO's clock follows the wall clock, one step at most per turn (a late turn does not catch up in a burst).
    counters.steps++;
    await sumo.client.stepWith(states, counters.steps * (LIVE_STEP_MS / 1000));
    let on = 0;
    for (const site of sites) {
      for (const input of site.inputs) {
        let present = false;
        for (const loop of input.loops)
          if ((await sumo.client.inductionLoopVehicleCount(loop)) > 0) present = true;
        input.model.setDetectorInput(input.channel, present);
        if (present) on++;
      }
    }
    counters.loopsOn = on;
  };
  const loop = (async () => {
    while (!stopping) {
      const due = started + (counters.steps + 1) * LIVE_STEP_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else counters.late++;
      if (stopping) break;
      try {
        await step();
      } catch (error) {
        if (!stopping) options.warn(`the traffic simulation stopped: ${(error as Error).message}`);
        break;
      }
    }
  })();
  return {
    description,
    counters,
    lights: new Map(sites.map((site) => [site.intersection.id, site.light])),
    signals: async () => {
      const out: Record<string, string> = {};
      for (const site of sites)
        out[site.intersection.id] = await sumo.client.trafficLightGetState(site.light.tlsId);
      return out;
    },
    stop: async () => {
      stopping = true;
      await loop;
      await sumo.stop();
    },
  };
}
