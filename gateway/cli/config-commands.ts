import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { registerPlanPush } from "./txn-commands.js";
import { type CheckReport, checkConfigFile, checkPlanForIntersection } from "../config/check.js";
import { formatIssue } from "../config/errors.js";
import { collect, emptyReport, withoutRepeats } from "../config/check-report.js";
import { describePlanBands, type PlanBands, planBands } from "../config/check-plan.js";
import { UsageError } from "./usage-error.js";
import { jsonSchemaFor, schemaFileName } from "../config/json-schema.js";
import { type FileKind, fileSchemas } from "../config/schema.js";

function print(report: CheckReport): boolean {
  for (const line of report.checked) process.stdout.write(`ok  ${line}\n`);
  for (const note of report.notes) process.stdout.write(`note  ${formatIssue(note)}\n`);
  for (const issue of report.issues) process.stderr.write(`${formatIssue(issue)}\n`);
  if (report.issues.length > 0) {
    process.stderr.write(`${report.issues.length} problem${report.issues.length === 1 ? "" : "s"} found\n`);
    return false;
  }
  return true;
}

interface PlanCheckOptions {
  readonly intersection?: string;
  readonly corridor?: string;
  readonly speedKmh?: string;
  readonly json?: boolean;
}

/** The corridor file's own range for progressionSpeedKmh. */
function parseSpeed(text: string): number {
  const kmh = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || kmh < 10 || kmh > 120) {
    throw new UsageError(`--speed-kmh must be a speed from 10 to 120 km/h, not "${text}"`);
  }
  return kmh;
}

/**
 * `plan check --corridor FILE PLAN…`: each plan's bands and best offsets (config/check-plan.ts), or
 * every problem found, located (exit 1). With --json, the figures of every plan as one document.
 */
function printPlanBands(
  corridor: string,
  planRefs: readonly string[],
  options: { readonly json: boolean; readonly speedKmh?: number },
): void {
  const report = emptyReport();
  const figures: PlanBands[] = [];
  for (const ref of planRefs) {
    collect(report, () => {
      figures.push(
        planBands(corridor, ref, options.speedKmh === undefined ? {} : { speedKmh: options.speedKmh }),
      );
    });
  }
  const failed = withoutRepeats(report).issues;
  if (options.json) {
    if (failed.length === 0) process.stdout.write(`${JSON.stringify({ plans: figures }, null, 2)}\n`);
  } else {
    for (const figure of figures)
      for (const line of describePlanBands(figure)) process.stdout.write(`${line}\n`);
  }
  for (const issue of failed) process.stderr.write(`${formatIssue(issue)}\n`);
  if (failed.length > 0) {
    process.stderr.write(`${failed.length} problem${failed.length === 1 ? "" : "s"} found\n`);
    process.exitCode = 1;
  }
}

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("configuration files");
  config
    .command("check")
    .description(
      "validate config files (intersection, corridor, plan, schedule or device profile) and everything they refer to; a plan is checked against its corridor and each of the corridor's intersections, a schedule against its corridor and its plans (and its next changes listed)",
    )
    .option(
      "--corridor <file>",
      "the corridor file to check plan and schedule files against (default: the corridor file with the file's corridor id, beside it or one directory up)",
    )
    .argument("<files...>", "YAML files to check")
    .action((files: string[], options: { corridor?: string }) => {
      let ok = true;
      const nowMs = Date.now();
      for (const file of files) ok = print(checkConfigFile(file, { ...options, nowMs })) && ok;
      if (!ok) process.exitCode = 1;
    });

  config
    .command("schema")
    .description("write the JSON Schema of every config file kind, for editors")
    .option("--out <dir>", "directory to write into", "config/schema")
    .action((options: { out: string }) => {
      mkdirSync(options.out, { recursive: true });
      for (const kind of Object.keys(fileSchemas) as FileKind[]) {
        const file = join(options.out, schemaFileName(kind));
        writeFileSync(file, jsonSchemaFor(kind));
        process.stdout.write(`wrote ${file}\n`);
      }
    });

  const plan = program.command("plan").description("signal timing plans");
  plan
    .command("check")
    .description(
      "validate a plan against an intersection (--intersection: its part of the plan, compiled as the gateway would), or against a corridor (--corridor: every part compiled, then the green wave: each direction's through bandwidth and where it starts at each intersection, the efficiency (b1 + b2) / 2C, and the offsets that would maximise b1 + b2 for the plan's splits; docs/green-wave.md)",
    )
    .option("--intersection <file>", "the intersection file")
    .option("--corridor <file>", "the corridor file: check the plan's green wave along it")
    .option(
      "--speed-kmh <kmh>",
      "with --corridor: the design speed instead of the corridor's progressionSpeedKmh",
    )
    .option("--json", "with --corridor: the figures as JSON")
    .argument("<plans...>", "plan files, or plan ids from the corridor's plans directory")
    .action((planRefs: string[], options: PlanCheckOptions) => {
      if (options.corridor === undefined) {
        if (options.intersection === undefined) {
          throw new UsageError("plan check needs --intersection FILE or --corridor FILE");
        }
        if (options.json || options.speedKmh !== undefined) {
          throw new UsageError("--json and --speed-kmh go with --corridor");
        }
        let ok = true;
        for (const ref of planRefs) ok = print(checkPlanForIntersection(options.intersection, ref)) && ok;
        if (!ok) process.exitCode = 1;
        return;
      }
      if (options.intersection !== undefined) {
        throw new UsageError("plan check takes --intersection or --corridor, not both");
      }
      printPlanBands(options.corridor, planRefs, {
        json: options.json === true,
        ...(options.speedKmh === undefined ? {} : { speedKmh: parseSpeed(options.speedKmh) }),
      });
    });
  registerPlanPush(plan);
}
