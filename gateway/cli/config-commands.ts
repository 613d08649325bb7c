import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { registerPlanPush } from "./txn-commands.js";
import { type CheckReport, checkConfigFile, checkPlanForIntersection } from "../config/check.js";
import { formatIssue } from "../config/errors.js";
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
      "validate a plan against an intersection: its part of the plan, compiled as the gateway would",
    )
    .requiredOption("--intersection <file>", "the intersection file")
    .argument("<plan>", "a plan file, or a plan id from the corridor's plans directory")
    .action((planRef: string, options: { intersection: string }) => {
      if (!print(checkPlanForIntersection(options.intersection, planRef))) process.exitCode = 1;
    });
  registerPlanPush(plan);
}
