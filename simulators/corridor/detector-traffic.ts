import type { Intersection } from "../../gateway/core/model.js";
import { SeededRandom } from "./random.js";

/**
 * Detector traffic for the deterministic corridor simulation: every detector of an intersection sees
 * vehicles (or button presses) arrive at random, each on the input for a few ticks, and now and then a
 * detector gives no reading for a while (a loose lead-in), which its diagnostics must catch. Everything
 * follows from the seed.
 */
export class DetectorTraffic {
  private readonly random: SeededRandom;
  private readonly on: number[];
  private readonly silentFor: number[];

  constructor(
    private readonly intersection: Intersection,
    seed: number,
    /** Arrivals per tick: a vehicle every 20 s, a press every 90 s, on average (at 100 ms ticks). */
    private readonly rates = { vehicle: 0.005, pedestrian: 0.0011, silence: 0.000_02 },
  ) {
    this.random = new SeededRandom(seed);
    const n = intersection.detectors?.length ?? 0;
    this.on = Array.from({ length: n }, () => 0);
    this.silentFor = Array.from({ length: n }, () => 0);
  }

  /** One tick's readings, by detector index: null while a detector is silent. */
  next(): (boolean | null)[] {
    return (this.intersection.detectors ?? []).map((d, i) => {
      if ((this.silentFor[i] as number) > 0) {
        this.silentFor[i] = (this.silentFor[i] as number) - 1;
        return null;
      }
      if (this.random.chance(this.rates.silence)) {
        this.silentFor[i] = this.random.int(20, 300);
        return null;
      }
      const left = this.on[i] as number;
      if (left > 0) {
        this.on[i] = left - 1;
        return true;
      }
      const rate = d.kind === "vehicle" ? this.rates.vehicle : this.rates.pedestrian;
      if (this.random.chance(rate))
        this.on[i] = d.kind === "vehicle" ? this.random.int(3, 12) : this.random.int(2, 5);
      return (this.on[i] as number) > 0;
    });
  }
}
