import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The example corridor's elm (config/) copied to a temp directory, its one module (io1) moved to
 * `link` (YAML flow text, e.g. `{ tcp: "127.0.0.1:1502" }`) and, when given, another device profile:
 * an installed gateway's intersection file, as a technician would have edited it.
 */
export function elmConfig(
  link: string,
  options: { profile?: string } = {},
): { dir: string; config: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "greenwave-doctor-cabinet-"));
  for (const part of ["corridor.yaml", "plans", "intersections", "devices"])
    cpSync(join("config", part), join(dir, part), { recursive: true });
  const config = join(dir, "intersections", "elm.yaml");
  let text = readFileSync(config, "utf8").replace('link: { tcp: "127.0.0.1:15021" }', `link: ${link}`);
  if (options.profile) {
    text = text.replace(
      "profile: ../devices/generic-do32-di32.yaml",
      `profile: ../devices/${options.profile}.yaml`,
    );
    // A module without discrete inputs has no detectors: elm runs the fixed-time plan then (its
    // actuated plans need a detector to call the side street).
    text = text
      .slice(0, text.indexOf("# Detectors"))
      .replace("initialPlan: off-peak", "initialPlan: pm-peak");
  }
  writeFileSync(config, text);
  return { dir, config, dataDir: join(dir, "data") };
}

/** `timedatectl timesync-status` of a synchronised systemd-timesyncd (a published sample's format). */
export const TIMESYNC_SYNCED = `       Server: 80.249.145.122 (0.debian.pool.ntp.org)
Poll interval: 8min 32s (min: 32s; max 34min 8s)
         Leap: normal
      Version: 4
      Stratum: 2
    Reference: 596DFB18
    Precision: 1us (-23)
Root distance: 38.803ms (max: 5s)
       Offset: -5.086ms
        Delay: 273.384ms
       Jitter: 10month 2w 1d 13h 28min 23.169258s
 Packet count: 17
    Frequency: -0.870ppm
`;
