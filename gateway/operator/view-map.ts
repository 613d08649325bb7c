import {
  type Availability,
  availabilitySchema,
  parsePayload,
  type Status,
  statusSchema,
} from "../protocol/messages.js";
import { parseTopic } from "../protocol/topics.js";

export interface IntersectionView {
  readonly corridor: string;
  readonly intersection: string;
  readonly availability: Availability | null;
  readonly status: Status | null;
}

/** More intersections than any corridor has; a broker that holds more is not read past it. */
export const MAX_VIEWS = 10_000;

/** The latest availability and status of each intersection, from the messages of the status tree. */
export class ViewMap {
  private readonly views = new Map<
    string,
    { corridor: string; intersection: string; availability: Availability | null; status: Status | null }
  >();

  constructor(private readonly corridor: string | null) {}

  /** Takes one message; false when it is not an availability or status (of the corridor asked for). */
  take(topic: string, payload: Buffer): boolean {
    const parsed = parseTopic(topic);
    if (!parsed || (this.corridor && parsed.corridor !== this.corridor)) return false;
    if (parsed.kind !== "status" && parsed.kind !== "availability") return false;
    const key = `${parsed.corridor}/${parsed.intersection}`;
    const known = this.views.get(key);
    if (!known && this.views.size >= MAX_VIEWS) return false;
    const view = known ?? {
      corridor: parsed.corridor,
      intersection: parsed.intersection,
      availability: null,
      status: null,
    };
    if (parsed.kind === "status") view.status = parsePayload(statusSchema, payload);
    else view.availability = parsePayload(availabilitySchema, payload);
    this.views.set(key, view);
    return true;
  }

  /** How many intersections have both their availability and their status. */
  get complete(): number {
    return [...this.views.values()].filter((v) => v.status && v.availability).length;
  }

  /** By corridor, then position along it. Copies: later messages do not change what was returned. */
  sorted(): IntersectionView[] {
    return [...this.views.values()]
      .map((view) => ({ ...view }))
      .sort(
        (a, b) =>
          a.corridor.localeCompare(b.corridor) ||
          (a.status?.position ?? 1e9) - (b.status?.position ?? 1e9) ||
          a.intersection.localeCompare(b.intersection),
      );
  }
}
