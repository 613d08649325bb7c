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
  if (options.profile)
    text = text.replace(
      "profile: ../devices/generic-do32-di32.yaml",
      `profile: ../devices/${options.profile}.yaml`,
    );
  writeFileSync(config, text);
  return { dir, config, dataDir: join(dir, "data") };
}
