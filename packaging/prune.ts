import { lstatSync, readdirSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * What no gateway ever loads, removed from the release's node_modules to keep the package small:
 * TypeScript sources and declarations, source maps, Markdown, and the tests, fixtures, examples,
 * benchmarks and docs directories at the top of a package. Licence files always stay. Directories go
 * by name only at a package's top (yaml's dist/doc/ is code): nothing here can be code that runs.
 */
const FILE_SUFFIXES = [".ts", ".mts", ".cts", ".map", ".md", ".markdown"];
const PACKAGE_DIRS = new Set([
  ".github",
  "test",
  "tests",
  "__tests__",
  "benchmark",
  "benchmarks",
  "bench",
  "example",
  "examples",
  "docs",
  "fixture",
  "fixtures",
]);

export interface PruneResult {
  readonly files: number;
  readonly bytes: number;
}

export function pruneNodeModules(nodeModules: string): PruneResult {
  const result = { files: 0, bytes: 0 };
  const remove = (path: string) => {
    const { count, bytes } = measure(path);
    result.files += count;
    result.bytes += bytes;
    rmSync(path, { recursive: true, force: true });
  };
  const visitPackages = (modules: string) => {
    for (const entry of safeList(modules)) {
      if (entry.startsWith(".")) continue;
      const names = entry.startsWith("@")
        ? safeList(join(modules, entry)).map((n) => `${entry}/${n}`)
        : [entry];
      for (const name of names) {
        const dir = join(modules, name);
        for (const sub of safeList(dir)) if (PACKAGE_DIRS.has(sub)) remove(join(dir, sub));
        visitPackages(join(dir, "node_modules"));
      }
    }
  };
  // Types are only for the compiler.
  for (const entry of safeList(join(nodeModules, "@types"))) remove(join(nodeModules, "@types", entry));
  visitPackages(nodeModules);
  const visitFiles = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        visitFiles(path);
        if (readdirSync(path).length === 0) rmdirSync(path);
      } else if (FILE_SUFFIXES.some((s) => entry.name.endsWith(s)) && !/^licen[cs]e/i.test(entry.name))
        remove(path);
    }
  };
  visitFiles(nodeModules);
  return result;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function measure(path: string): { count: number; bytes: number } {
  const stat = lstatSync(path);
  if (!stat.isDirectory()) return { count: 1, bytes: stat.size };
  let count = 0;
  let bytes = 0;
  for (const entry of readdirSync(path)) {
    const sub = measure(join(path, entry));
    count += sub.count;
    bytes += sub.bytes;
  }
  return { count, bytes };
}
