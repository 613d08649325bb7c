import { type CheckReport, collect } from "./check-report.js";
import { ConfigError, displayPath } from "./errors.js";
import { type LoadedCorridor, type LoadedIntersection, loadIntersection, loadReferenced } from "./load.js";

/**
 * The corridor's intersections by id, each null when its file did not load (its issues are in the
 * report): one broken intersection does not stop the checks of the others.
 */
export function loadMembers(corridor: LoadedCorridor, report: CheckReport): Map<string, LoadedIntersection | null> {
  const members = new Map<string, LoadedIntersection | null>();
  corridor.raw.intersections.forEach((entry, i) => {
    if (members.has(entry.id)) return;
    members.set(entry.id, null);
    const file = corridor.intersectionFiles.get(entry.id) as string;
    collect(report, () => {
      const loaded = loadReferenced(corridor.yaml, ["intersections", i, "file"], "intersection file", () =>
        loadIntersection(file),
      );
      if (loaded.raw.id !== entry.id) {
        throw new ConfigError(
          corridor.yaml.locate([
            {
              path: ["intersections", i, "id"],
              message: `${displayPath(file)} defines intersection ${loaded.raw.id}, not ${entry.id}`,
            },
          ]),
        );
      }
      members.set(entry.id, loaded);
    });
  });
  return members;
}
