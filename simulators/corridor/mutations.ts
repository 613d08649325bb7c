/**
 * Deliberate protocol bugs the simulator can inject, to prove that its checker catches them. Each is
 * applied by the simulator's adapter around the real machines; the product code has no such switch.
 */
export const MUTATIONS = {
  "skip-forced-prepare": "a participant votes yes without force-writing PREPARED first",
  "ignore-fencing-token": "a participant accepts a PREPARE whatever its fencing token",
  "abort-after-yes": "a participant in doubt for 3 s aborts on its own after voting yes",
  "skip-forced-commit": "a coordinator sends COMMIT without force-writing its decision first",
  "ignore-field-at-start":
    "a gateway restarted before its module's watchdog fired starts its flash over the lamps still lit",
  "stop-without-clearances":
    "a gateway told to stop hands its lamps to the module's safe state at once, cutting what runs",
  "switch-at-change-instant":
    "a gateway's schedule hands a plan change over for the scheduled change's instant instead of the common cycle boundary at or after it",
  "stale-schedule-version": "a gateway that adopts a newly committed schedule goes on running the one it had",
  "skip-decision-signature":
    "a participant takes any decision about the transaction it is in doubt about as its coordinator's, without checking its signature",
} as const;

export type Mutation = keyof typeof MUTATIONS;

export function isMutation(name: string): name is Mutation {
  return Object.hasOwn(MUTATIONS, name);
}
