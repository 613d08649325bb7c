import type { Backup } from "./backups.js";
import type { ServiceManagerChoice } from "./choose-manager.js";
import type { DirectServiceOptions } from "./direct-service.js";
import type { GateBounds } from "./health-gate.js";
import type { Links } from "./links.js";
import type { ReleaseManifest } from "./manifest.js";
import type { InstallPaths } from "./paths.js";
import type { StoreState } from "./preflight.js";
import type { ServiceManager } from "./service-manager.js";

/** What an activation is told, and what it answers (shared by activate.ts, rollback.ts, upgrade.ts). */

export interface ActivateOptions {
  /** "/" on a gateway; every path is under it. */
  readonly root: string;
  readonly bounds: GateBounds;
  readonly serviceManager: ServiceManagerChoice;
  /** Who runs it, for the audit trail. */
  readonly actor: string;
  /** One line of progress, as it happens. */
  readonly report: (line: string) => void;
  /** Aborted: the trial fails (and is rolled back); the rollback itself always runs to its end. */
  readonly signal?: AbortSignal;
  /** `uname -m`, for the tests' arch mismatch; the machine's by default. */
  readonly unameM?: string;
  readonly direct?: DirectServiceOptions;
  readonly nowWallMs?: () => number;
}

export interface ActivationResult {
  readonly outcome: "activated" | "rolled-back" | "refused" | "unchanged";
  readonly version: string;
  /** What happened and why, and on a failure what to do: printed as it is. */
  readonly message: string;
  readonly exitCode: 0 | 1;
}

/** One activation under way, past its checks: what a rollback needs to undo it. */
export interface Attempt {
  readonly paths: InstallPaths;
  readonly manifest: ReleaseManifest;
  /** The links before the switch, and after it. */
  readonly before: Links;
  readonly switched: Links;
  /** The stores as they were before the switch (with their schema versions). */
  readonly stores: readonly StoreState[];
  readonly backup: Backup | null;
  readonly manager: ServiceManager;
  readonly options: ActivateOptions;
}

export const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
