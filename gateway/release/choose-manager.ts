import { existsSync } from "node:fs";
import { DirectService, type DirectServiceOptions } from "./direct-service.js";
import type { InstallPaths } from "./paths.js";
import type { ServiceManager } from "./service-manager.js";
import { SystemdService } from "./systemd-service.js";

export const SERVICE_MANAGERS = ["auto", "systemd", "direct", "none"] as const;
export type ServiceManagerChoice = (typeof SERVICE_MANAGERS)[number];

/** systemd's own test for "booted with systemd" (sd_booted(3)). */
const SYSTEMD_RUNNING = "/run/systemd/system";

/**
 * Which service manager an activation uses. `auto`: systemd when it runs this machine and the install
 * is the machine's own (root "/"); otherwise none — a chroot, a container, a laptop, or a --root that
 * is not this machine's: then activation only switches the links, and says so.
 */
export function chooseServiceManager(
  choice: ServiceManagerChoice,
  paths: InstallPaths,
  direct: DirectServiceOptions = {},
): { manager: ServiceManager | null; why: string } {
  switch (choice) {
    case "systemd":
      return { manager: new SystemdService(), why: "--service-manager systemd" };
    case "direct":
      return { manager: new DirectService(paths, direct), why: "--service-manager direct (a trial run)" };
    case "none":
      return { manager: null, why: "--service-manager none" };
    case "auto":
      if (paths.root !== "/")
        return {
          manager: null,
          why: `--root ${paths.root} is not this machine's install: its systemd is not asked`,
        };
      if (!existsSync(SYSTEMD_RUNNING))
        return {
          manager: null,
          why: `no running systemd (${SYSTEMD_RUNNING} is missing: a chroot, a container or a machine without systemd)`,
        };
      return { manager: new SystemdService(), why: "systemd runs this machine" };
  }
}
