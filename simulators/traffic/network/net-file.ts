/**
 * What greenwave reads back from a .net.xml that netconvert wrote (pure, from its text): the
 * controlled connections with their traffic light and link index, the crossings, the lanes' lengths,
 * each traffic light's state length, and each junction's right-of-way matrix. netconvert writes one
 * element per line with double-quoted attributes; this reads exactly that, not XML at large.
 */

export interface ControlledLink {
  readonly tl: string;
  readonly linkIndex: number;
  readonly from: string;
  readonly to: string;
  /** SUMO lane index, sidewalk included. */
  readonly fromLane: number;
}

export interface NetFile {
  readonly links: readonly ControlledLink[];
  /** Crossing edge id (":oak_c0") → the two edges it crosses. */
  readonly crossings: ReadonlyMap<string, readonly string[]>;
  /** Lane id → length in m (normal edges only). */
  readonly laneLengths: ReadonlyMap<string, number>;
  /** Traffic light id → the length of its programme's states (its number of link indices). */
  readonly stateLengths: ReadonlyMap<string, number>;
  /** Junction id → per link index, the link indices it must yield to (response) and those it conflicts with (foes). */
  readonly requests: ReadonlyMap<
    string,
    readonly { readonly response: ReadonlySet<number>; readonly foes: ReadonlySet<number> }[]
  >;
}

/** Bounded: a corridor's net is some hundreds of kB; anything far bigger is not one greenwave wrote. */
export const MAX_NET_FILE_CHARS = 64_000_000;

function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z0-9_]+)="([^"]*)"/g)) out.set(m[1] as string, m[2] as string);
  return out;
}

/** A request's bit string: its last character is link 0. */
function bits(text: string): Set<number> {
  const out = new Set<number>();
  for (let k = 0; k < text.length; k++) if (text[text.length - 1 - k] === "1") out.add(k);
  return out;
}

export function parseNetFile(text: string): NetFile {
  if (text.length > MAX_NET_FILE_CHARS) throw new Error(`net file of ${text.length} characters is too large`);
  const links: ControlledLink[] = [];
  const crossings = new Map<string, readonly string[]>();
  const laneLengths = new Map<string, number>();
  const stateLengths = new Map<string, number>();
  const requests = new Map<string, { response: Set<number>; foes: Set<number> }[]>();
  let edge: string | null = null;
  let tlLogic: string | null = null;
  let junction: string | null = null;
  for (const m of text.matchAll(/<(edge|lane|connection|tlLogic|phase|junction|request)\b([^>]*)>/g)) {
    const tag = m[1] as string;
    const a = attributes(m[2] as string);
    switch (tag) {
      case "edge": {
        edge = a.get("id") ?? null;
        if (a.get("function") === "crossing" && edge !== null)
          crossings.set(edge, (a.get("crossingEdges") ?? "").split(" ").filter(Boolean));
        break;
      }
      case "lane": {
        const id = a.get("id");
        if (edge !== null && !edge.startsWith(":") && id !== undefined)
          laneLengths.set(id, Number(a.get("length")));
        break;
      }
      case "connection": {
        const tl = a.get("tl");
        if (tl !== undefined)
          links.push({
            tl,
            linkIndex: Number(a.get("linkIndex")),
            from: a.get("from") ?? "",
            to: a.get("to") ?? "",
            fromLane: Number(a.get("fromLane")),
          });
        break;
      }
      case "tlLogic":
        tlLogic = a.get("id") ?? null;
        break;
      case "phase": {
        const state = a.get("state");
        if (tlLogic !== null && state !== undefined && !stateLengths.has(tlLogic))
          stateLengths.set(tlLogic, state.length);
        break;
      }
      case "junction":
        junction = a.get("id") ?? null;
        if (junction !== null && !(m[2] as string).trimEnd().endsWith("/")) requests.set(junction, []);
        break;
      case "request": {
        const list = junction === null ? undefined : requests.get(junction);
        const index = Number(a.get("index"));
        if (list !== undefined)
          list[index] = { response: bits(a.get("response") ?? ""), foes: bits(a.get("foes") ?? "") };
        break;
      }
    }
  }
  return { links, crossings, laneLengths, stateLengths, requests };
}
