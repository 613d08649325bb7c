import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { coilsFor } from "../../devices/io-map.js";
import { loadDemand } from "../../gateway/config/load-demand.js";
import { loadCorridor, loadIntersection } from "../../gateway/config/load.js";
import { lampsFor } from "../../gateway/core/lamps.js";
import type { Aspect } from "../../gateway/core/model.js";
import { ModuleModel } from "../../simulators/io-module/module-model.js";
import { type LiveTraffic, startLiveTraffic } from "../../simulators/traffic/live-traffic.js";
import { hasTool } from "../support/tools.js";

const haveSumo =
  hasTool("netconvert", "the live traffic bridge's tests", "sumo") &&
  hasTool("sumo", "the live traffic bridge's tests", "sumo");

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.runIf(haveSumo)(
  "the live demo's bridge: module relays to SUMO's signals (real sumo, in real time)",
  () => {
    it("what a module's relays show is what SUMO's traffic light shows, link by link, within a few steps", async () => {
      const corridor = loadCorridor("config/corridor.yaml");
      const intersections = [...corridor.intersectionFiles.values()].map((file) => loadIntersection(file));
      // One module model per intersection, as the demo's simulators hold them; the test writes their coils.
      const sites = intersections.map((loaded) => ({
        intersection: loaded,
        modules: loaded.modules.map((layout) => ({
          layout,
          model: new ModuleModel(layout.profile, Date.now()),
        })),
      }));
      /** Writes every module's relays as its gateway would for these aspects (by group id). */
      const show = (aspectOf: (group: string) => Aspect) => {
        for (const site of sites)
          for (const { layout, model } of site.modules) {
            const lamps = site.intersection.intersection.groups.map((g) => lampsFor(aspectOf(g.id), true));
            model.writeCoils(
              layout.profile.firstCoil,
              coilsFor(layout, lamps),
              performance.now(),
              Date.now(),
            );
          }
      };
      const dir = mkdtempSync(join(tmpdir(), "greenwave-live-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const live: LiveTraffic = await startLiveTraffic({
        corridor,
        sites,
        demand: loadDemand("config/demand/off-peak.yaml", corridor),
        dir,
        warn: (message) => {
          throw new Error(message);
        },
      });
      cleanups.push(() => live.stop());
      const expectShown = async (aspectOf: (group: string) => Aspect) => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const signals = await live.signals();
        for (const site of sites) {
          const id = site.intersection.intersection.id;
          const light = live.lights.get(id);
          const state = signals[id] ?? "";
          expect(state.length, id).toBe(light?.links.length);
          light?.links.forEach((link, k) => {
            const group = site.intersection.intersection.groups[link.group];
            const aspect = aspectOf(group?.id ?? "");
            const char = state[k];
            if (aspect === "green" || aspect === "walk")
              expect("Gg", `${id} link ${k} (${link.movement})`).toContain(char);
            else
              expect(char, `${id} link ${k} (${link.movement}) on ${aspect}`).toBe(
                aspect === "yellow" ? "y" : "r",
              );
          });
        }
      };
      // Main street green (and the walks beside it), everything else red / don't walk.
      const mainGreen = (g: string): Aspect =>
        g === "M" ? "green" : g === "PS" ? "walk" : g.startsWith("P") ? "dont-walk" : "red";
      show(mainGreen);
      await expectShown(mainGreen);
      // Then the side street's turn: S green, PM walk, the rest red.
      const sideGreen = (g: string): Aspect =>
        g === "S"
          ? "green"
          : g === "PM"
            ? "walk"
            : g.startsWith("P")
              ? "dont-walk"
              : g === "M"
                ? "yellow"
                : "red";
      show(sideGreen);
      await expectShown(sideGreen);
      expect(live.counters.steps).toBeGreaterThan(5);
    }, 60_000);
  },
);
