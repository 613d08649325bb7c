import {
  compileIntersectionPlan,
  type LoadedCorridor,
  type LoadedPlan,
  loadIntersection,
  loadPlan,
  planFileFor,
} from "../config/load.js";
import { ConfigError } from "../config/errors.js";
import { type Intersection, type IntersectionPlan, phaseNumber } from "../core/model.js";
import { corridorBands, planSite, throughGroup } from "../core/progression/index.js";
import type { DiagramView, GroupView } from "./view.js";

/** The design speed when the corridor file names none (progressionSpeedKmh): 50 km/h, an urban arterial's. */
export const DEFAULT_SPEED_KMH = 50;

/** Plans looked up by id from status messages: at most this many kept (hit or miss). */
const MAX_CACHED_PLANS = 32;

/** A plan id as the config schema allows it: anything else is never turned into a file name. */
const PLAN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface ConsoleSite {
  readonly id: string;
  readonly name: string;
  readonly positionM: number;
  readonly intersection: Intersection;
  readonly groups: readonly GroupView[];
}

/**
 * The corridor as the console draws it: its intersections in order at their cumulative distances, the
 * design speed, and each plan's through group (gateway/core/progression throughGroup: the first vehicle
 * group of the plan's coordinated stage), read from the corridor's plans directory by the plan id the
 * gateways report.
 */
export class CorridorModel {
  readonly sites: readonly ConsoleSite[];
  readonly speedMps: number;
  private readonly plans = new Map<string, LoadedPlan | null>();

  constructor(readonly corridor: LoadedCorridor) {
    let positionM = 0;
    this.sites = corridor.raw.intersections.map((entry) => {
      positionM += entry.distanceMeters;
      const file = corridor.intersectionFiles.get(entry.id) as string;
      const intersection = loadIntersection(file).intersection;
      return {
        id: entry.id,
        name: intersection.name,
        positionM,
        intersection,
        groups: intersection.groups.map((g, i) => ({
          id: g.id,
          kind: g.kind,
          phase: phaseNumber(intersection, i),
        })),
      };
    });
    this.speedMps = ((corridor.raw.progressionSpeedKmh ?? DEFAULT_SPEED_KMH) * 1000) / 3600;
  }

  get id(): string {
    return this.corridor.raw.id;
  }

  get name(): string {
    return this.corridor.raw.name ?? this.corridor.raw.id;
  }

  site(id: string): ConsoleSite | undefined {
    return this.sites.find((s) => s.id === id);
  }

  /** The corridor's plan file of that id, or null (unknown id, unreadable or invalid file). */
  private plan(planId: string): LoadedPlan | null {
    if (!PLAN_ID.test(planId)) return null;
    if (this.plans.has(planId)) return this.plans.get(planId) ?? null;
    let plan: LoadedPlan | null = null;
    try {
      plan = loadPlan(planFileFor(this.corridor, planId));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
    }
    if (this.plans.size >= MAX_CACHED_PLANS) this.plans.clear();
    this.plans.set(planId, plan);
    return plan;
  }

  /** One intersection's part of the plan, compiled, or null. */
  intersectionPlan(siteId: string, planId: string): IntersectionPlan | null {
    const site = this.site(siteId);
    const plan = this.plan(planId);
    if (!site || !plan) return null;
    try {
      return compileIntersectionPlan(site.intersection, plan, this.corridor);
    } catch (error) {
      if (error instanceof ConfigError) return null;
      throw error;
    }
  }

  /** The through group of an intersection under a plan: its id and phase number. */
  through(siteId: string, planId: string | null): { group: string; phase: number } | null {
    const site = this.site(siteId);
    if (!site) return null;
    const plan = planId === null ? null : this.intersectionPlan(siteId, planId);
    const index = plan
      ? throughGroup(site.intersection, plan)
      : site.intersection.groups.findIndex((g) => g.kind === "vehicle");
    if (index === null || index < 0) return null;
    return {
      group: site.intersection.groups[index]?.id as string,
      phase: phaseNumber(site.intersection, index),
    };
  }

  /** The plan's own bands over the corridor (corridorBands), or null if it cannot be computed. */
  designBands(planId: string): DiagramView["design"] {
    const parts = this.sites.map((site) => ({ site, plan: this.intersectionPlan(site.id, planId) }));
    const cycleMs = parts[0]?.plan?.cycleMs;
    if (cycleMs === undefined) return null;
    const sites = [];
    for (const { site, plan } of parts) {
      if (!plan || plan.cycleMs !== cycleMs) return null;
      const progression = planSite(site.intersection, plan, site.positionM);
      if (!progression) return null;
      sites.push(progression);
    }
    try {
      const report = corridorBands({ cycleMs, speedMps: this.speedMps, sites });
      return {
        planId,
        forwardMs: report.forward.widthMs,
        reverseMs: report.reverse.widthMs,
        efficiency: report.efficiency,
      };
    } catch {
      return null;
    }
  }
}
