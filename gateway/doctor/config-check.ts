import { resolve } from "node:path";
import { ConfigError, displayPath, formatIssue, UnreadableConfigFileError } from "../config/errors.js";
import { type IntersectionSetup, loadIntersectionSetup } from "../config/load.js";
import { type CheckResult, fail, pass } from "./check-result.js";

/**
 * The intersection file, loaded exactly as the gateway loads it (its corridor, its initial plan, its
 * devices' profiles): the loader's messages already say which file, line and field is wrong.
 */
export function checkConfig(file: string): { result: CheckResult; setup: IntersectionSetup | null } {
  try {
    const setup = loadIntersectionSetup(file);
    const { intersection, modules } = setup.intersection;
    const devices = modules.map((m) => `${m.deviceId} (${m.profile.id})`).join(", ") || "no devices";
    return {
      result: pass(
        "config",
        `${displayPath(setup.intersection.file)}: intersection ${intersection.id} of corridor ${setup.corridor.raw.id}, initial plan ${setup.initialPlan.planId}, devices ${devices}`,
      ),
      setup,
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    if (error instanceof UnreadableConfigFileError && error.file === resolve(file))
      return {
        result: fail(
          "config",
          `cannot read ${displayPath(file)}: ${error.reason}`,
          "give the intersection file with --config FILE",
        ),
        setup: null,
      };
    const count = error.issues.length;
    return {
      result: fail(
        "config",
        error.issues.map(formatIssue).join("; "),
        `fix ${count === 1 ? "it" : `these ${count} problems`}; \`greenwave config check ${displayPath(file)}\` lists them one a line`,
      ),
      setup: null,
    };
  }
}
