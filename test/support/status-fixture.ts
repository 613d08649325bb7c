import { type Status, statusSchema } from "../../gateway/protocol/messages.js";

/**
 * A status as a gateway of the example corridor publishes it (coordinated, off-peak v1, no fault),
 * checked against the protocol's schema; `extra` overrides any field.
 */
export function exampleStatus(
  id: string,
  position: number,
  atMs: number,
  extra: Partial<Status> = {},
): Status {
  return statusSchema.parse({
    v: 1,
    corridor: "main-street",
    intersection: id,
    name: `Main St & ${id}`,
    position,
    mode: "coordinated",
    plan: { id: "off-peak", version: 1 },
    fault: null,
    lock: null,
    lastTxn: null,
    at: new Date(atMs).toISOString(),
    ...extra,
  });
}
