#!/usr/bin/env node
import { relative } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { type BuildResult, buildPackage } from "./build.js";
import { DEPENDS_OF_SCRIPTS } from "./control.js";
import { PackagingError } from "./errors.js";
import { repoRoot } from "./repo.js";
import type { DebArch } from "./target.js";

/**
 * `npm run package -- --arch arm64|amd64 [--out DIR]`: greenwave_<version>_<arch>.deb and .tar.gz
 * (docs/packaging.md). Exit 0 built, 1 a build that cannot go on (the message says why and what to
 * do), 2 a wrong command line, 70 a bug.
 */
const program = new Command()
  .name("npm run package --")
  .description("build the greenwave .deb and .tar.gz for a gateway (docs/packaging.md)")
  .addOption(
    new Option("--arch <arch>", "target architecture").choices(["amd64", "arm64"]).makeOptionMandatory(),
  )
  .option("--out <dir>", "where the .deb and .tar.gz go", "dist-package")
  .showHelpAfterError()
  .exitOverride()
  .action(async (options: { arch: DebArch; out: string }) => {
    const result = await buildPackage({ repoRoot: repoRoot(), arch: options.arch, outDir: options.out });
    process.stdout.write(summary(result));
  });

function summary(r: BuildResult): string {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const path = (p: string) => (relative(process.cwd(), p).startsWith("..") ? p : relative(process.cwd(), p));
  const whole = Math.round(r.seconds);
  const minutes = `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return [
    `greenwave ${r.info.version} for ${r.info.arch}: commit ${r.info.commit}, Node ${r.info.node}, store schema ${r.info.schemaVersion}, SOURCE_DATE_EPOCH ${r.epoch}`,
    `  ${path(r.deb)}  ${mb(r.sizes.deb)}`,
    `  ${path(r.tarball)}  ${mb(r.sizes.tarball)}`,
    `  release tree: ${mb(r.sizes.tree)} in ${r.files} files (node ${mb(r.sizes.node)}, app/node_modules ${mb(r.sizes.nodeModules)}, app/dist ${mb(r.sizes.dist)})`,
    `  native addons built: ${r.addons.map((a) => `${a.binary} (${Math.round(a.seconds)} s)`).join(", ")}`,
    `  addon load test: ${r.loaded}`,
    `  pruned from node_modules: ${r.pruned.files} files, ${mb(r.pruned.bytes)}`,
    `  Depends: ${[...r.depends, ...DEPENDS_OF_SCRIPTS].join(", ")}`,
    `  built in ${minutes} (${Object.entries(r.phases)
      .map(([name, s]) => `${name} ${Math.round(s)} s`)
      .join(", ")})`,
    "",
  ].join("\n");
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof PackagingError) {
    process.stderr.write(`greenwave package: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(
      `greenwave package: internal error (please report): ${(error as Error).stack ?? String(error)}\n`,
    );
    process.exitCode = 70;
  }
}
