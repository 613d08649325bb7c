import { renameSync } from "node:fs";
import { basename, dirname } from "node:path";
import { run } from "./run.js";

/**
 * The .tar.gz of a release tree (greenwave-<version>/ at its top), for systems without dpkg. Entries
 * sorted by name, every mtime the epoch, owned by 0:0 without names, and gzip without the name and
 * time of its input (-n): the same tree gives the same bytes.
 */
export function writeTarball(tree: string, epoch: number, out: string): void {
  const partial = `${out}.partial`;
  run(
    "tar",
    [
      "--sort=name",
      `--mtime=@${epoch}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=gnu",
      "--use-compress-program=gzip -9n",
      "-C",
      dirname(tree),
      "-cf",
      partial,
      basename(tree),
    ],
    { what: "writing the .tar.gz", capture: true, install: "tar gzip" },
  );
  renameSync(partial, out);
}
