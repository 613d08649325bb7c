import { describe, expect, it } from "vitest";
import { ASPECTS, type Aspect } from "../../../gateway/core/model.js";
import {
  linkChar,
  signalState,
  type TrafficLightMap,
} from "../../../simulators/traffic/network/signal-state.js";

/** Groups 0 (M), 1 (S), 2 (PM); links: a protected and a permissive movement of M, one of S, a crossing of PM. */
const map: TrafficLightMap = {
  intersectionId: "elm",
  tlsId: "elm",
  links: [
    { group: 0, kind: "protected", movement: "eastbound-through" },
    { group: 0, kind: "permissive", movement: "eastbound-left" },
    { group: 1, kind: "protected", movement: "northbound-through" },
    { group: 2, kind: "pedestrian", movement: "crossing-west" },
  ],
};

describe("signalState: the RYG string SUMO's traffic light shows for the controller's aspects", () => {
  it.each<[Aspect, string, string]>([
    // aspect of M,   M's two links,  what it means in SUMO
    ["green", "Gg", "protected goes with priority, permissive yields"],
    ["yellow", "yy", "amber"],
    ["red", "rr", "stop"],
    ["yellow-flash", "oo", "off, blinking: yield"],
    ["red-flash", "ss", "stop, then go when no foe with priority comes"],
    ["dark", "ss", "a dark signal is an all-way stop"],
  ])("a vehicle group showing %s gives %s (%s)", (aspect, expected) => {
    expect(signalState(map, [aspect, "red", "dont-walk"]).slice(0, 2)).toBe(expected);
  });

  it.each<[Aspect, string]>([
    ["walk", "G"],
    ["ped-clearance", "r"],
    ["dont-walk", "r"],
    ["dark", "O"],
  ])("a pedestrian group showing %s gives %s on its crossing", (aspect, expected) => {
    expect(signalState(map, ["red", "red", aspect]).slice(3)).toBe(expected);
  });

  it("every aspect gives one of SUMO's signal characters, for every kind of link", () => {
    const aspects: readonly Aspect[] = ASPECTS;
    for (const kind of ["protected", "permissive", "pedestrian"] as const)
      for (const aspect of aspects) expect("rygGsuoO").toContain(linkChar(kind, aspect));
  });

  it("is one character per link, in link-index order; a group without an aspect shows red", () => {
    expect(signalState(map, ["green", "red", "walk"])).toBe("GgrG");
    expect(signalState(map, ["red", "green", "dont-walk"])).toBe("rrGr");
    expect(signalState(map, ["green"])).toBe("Ggrr");
    expect(signalState({ ...map, links: [] }, ["green"])).toBe("");
  });

  it("never shows a go on a link whose group is not in go", () => {
    for (const aspect of ["red", "dont-walk", "ped-clearance"] as Aspect[])
      expect(signalState(map, [aspect, aspect, aspect])).toMatch(/^r+$/);
  });
});
