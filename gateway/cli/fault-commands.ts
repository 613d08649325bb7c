import { appendFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { FileLatchStore } from "../shell/latch-store.js";
import { UsageError } from "./usage-error.js";

interface ClearOptions {
  intersection: string;
  dataDir: string;
  by: string;
}

/**
 * `greenwave fault clear`: the field engineer's reset, at the cabinet, of a gateway that is stopped.
 * The gateway reads the latch only when it starts, and then goes through the whole start-up sequence.
 * Every clear is appended to an audit file beside the latch. (Over MQTT: `greenwave fault reset`.)
 */
export function registerFaultCommands(program: Command): void {
  const fault = program.command("fault").description("latched faults");
  fault
    .command("show")
    .description("print the latched fault of an intersection, if any")
    .requiredOption("--intersection <id>", "intersection id")
    .option("--data-dir <dir>", "the gateway's data directory", "/var/lib/greenwave")
    .action((options: Omit<ClearOptions, "by">) => {
      const latch = new FileLatchStore(latchFile(options)).load();
      process.stdout.write(
        latch ? `${JSON.stringify(latch)}\n` : `no latched fault at ${options.intersection}\n`,
      );
      if (latch) process.exitCode = 1;
    });
  fault
    .command("clear")
    .description("clear the latched fault of a STOPPED gateway (it restarts through flash and all-red)")
    .requiredOption("--intersection <id>", "intersection id")
    .requiredOption("--by <operator>", "who clears it, for the audit trail")
    .option("--data-dir <dir>", "the gateway's data directory", "/var/lib/greenwave")
    .action((options: ClearOptions) => {
      const file = latchFile(options);
      const store = new FileLatchStore(file);
      const latch = store.load();
      if (!latch) {
        process.stdout.write(`no latched fault at ${options.intersection}\n`);
        return;
      }
      const audit = join(resolve(options.dataDir, options.intersection), "audit.log");
      appendFileSync(
        audit,
        `${JSON.stringify({ at: new Date().toISOString(), action: "fault-clear", by: options.by, latch })}\n`,
      );
      store.clear(options.by);
      process.stdout.write(
        `cleared ${latch.kind} at ${options.intersection} (${latch.message}); audited in ${audit}\n`,
      );
    });
}

function latchFile(options: { intersection: string; dataDir: string }): string {
  const dir = resolve(options.dataDir, options.intersection);
  if (!existsSync(dir))
    throw new UsageError(`no gateway data for ${options.intersection} in ${dir} (check --data-dir)`);
  return join(dir, "latch.json");
}
