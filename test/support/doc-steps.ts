import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * Steps a document tells people to run, run by the tests as they stand: the first fenced block after
 * `marker` (a `<!-- test: NAME -->` comment, or any line of the text) in a Markdown file. A document
 * whose steps stopped working fails a test, not a site.
 */
export function docBlock(file: string, marker: string): string {
  const text = readFileSync(file, "utf8");
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`${file}: no "${marker}"`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(text.slice(at + marker.length));
  if (!block?.[1]) throw new Error(`${file}: no fenced block after "${marker}"`);
  return block[1];
}

/**
 * Runs the sh block after `<!-- test: NAME -->` with bash (errexit, pipefail) in `dir`. `set` gives
 * the values of the block's variable lines (`NAME=gw-elm` at a line's start): each must be there
 * exactly once, so that a block edited out of shape fails here rather than running with its example.
 */
export function runDocStep(
  file: string,
  name: string,
  dir: string,
  set: Record<string, string> = {},
): string {
  let script = docBlock(file, `<!-- test: ${name} -->`);
  for (const [variable, value] of Object.entries(set)) {
    const line = new RegExp(`^${variable}=.*$`, "gm");
    const found = script.match(line)?.length ?? 0;
    if (found !== 1) throw new Error(`${file} ${name}: ${found} lines set ${variable}, not one`);
    script = script.replace(line, `${variable}=${value}`);
  }
  const run = spawnSync("bash", ["-euo", "pipefail", "-c", script], { cwd: dir, encoding: "utf8" });
  if (run.status !== 0)
    throw new Error(`${file} ${name} failed (exit ${String(run.status)}): ${run.stderr}${run.stdout}`);
  return run.stdout;
}
