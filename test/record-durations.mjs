// Writes test/durations.json from vitest's cache of the last full run (node_modules/.vite/vitest):
// each test file's duration in seconds, for test/duration-sequencer.ts. Run it after `npm test`.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const root = "node_modules/.vite/vitest";
const newest = readdirSync(root)
  .map((dir) => join(root, dir, "results.json"))
  .filter((file) => {
    try {
      return statSync(file).isFile();
    } catch {
      return false;
    }
  })
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
if (!newest) throw new Error(`no vitest results under ${root}: run npm test first`);
const { results } = JSON.parse(readFileSync(newest, "utf8"));
const durations = Object.fromEntries(
  results
    // Files of this tree only: the cache remembers files since renamed or removed.
    .filter(([key, r]) => !r.failed && r.duration > 0 && existsSync(key.slice(key.indexOf(":") + 1)))
    .map(([file, r]) => [file, Math.round(r.duration / 100) / 10])
    .sort(([a], [b]) => (a < b ? -1 : 1)),
);
writeFileSync("test/durations.json", `${JSON.stringify(durations, null, 2)}\n`);
process.stdout.write(`test/durations.json: ${Object.keys(durations).length} files from ${newest}\n`);
