import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, formatIssue, UnreadableConfigFileError } from "../../gateway/config/errors.js";
import { readRegularFile, UnreadableFileError } from "../../gateway/config/read-file.js";
import { MAX_CONFIG_FILE_BYTES, parseYamlText, readYamlFile } from "../../gateway/config/yaml-file.js";

/**
 * Issue 12, defect 7, in process: files that would hang (a FIFO) or balloon (`/dev/zero`,
 * `/dev/urandom`) are refused before a byte is read, oversized files by their size, alias bombs with
 * a located error. A hang fails the test by its timeout.
 */
const QUICK = 5_000;

const dir = mkdtempSync(join(tmpdir(), "greenwave-hostile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fifo(name: string): string {
  const path = join(dir, name);
  const made = spawnSync("mkfifo", [path]);
  expect(made.status, String(made.stderr)).toBe(0);
  return path;
}

describe("reading a file a user named", () => {
  const notConfigFiles: readonly (readonly [string, () => string, string])[] = [
    ["/dev/zero", () => "/dev/zero", "is a character device, not a regular file"],
    ["/dev/urandom", () => "/dev/urandom", "is a character device, not a regular file"],
    ["a FIFO", () => fifo("pipe.yaml"), "is a named pipe (FIFO), not a regular file"],
    ["a directory", () => dir, "is a directory, not a regular file"],
    ["a missing file", () => join(dir, "nope.yaml"), "no such file"],
  ];

  it.each(notConfigFiles)(
    "%s is refused unread",
    (_, path, reason) => {
      const file = path();
      expect(() => readRegularFile(file, 1000)).toThrow(new UnreadableFileError(file, reason));
      let thrown: unknown;
      try {
        readYamlFile(file);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(UnreadableConfigFileError);
      expect((thrown as ConfigError).issues.map(formatIssue)).toEqual([`${file}: cannot read: ${reason}`]);
    },
    QUICK,
  );

  it(
    "a file over the limit is refused by its size; one at the limit is read whole",
    () => {
      const big = join(dir, "big.yaml");
      writeFileSync(big, Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1, "#"));
      expect(() => readYamlFile(big)).toThrow(
        `cannot read: is ${MAX_CONFIG_FILE_BYTES + 1} bytes; the limit is ${MAX_CONFIG_FILE_BYTES} bytes`,
      );
      const exact = join(dir, "exact.yaml");
      writeFileSync(exact, Buffer.alloc(MAX_CONFIG_FILE_BYTES, "#"));
      expect(readRegularFile(exact, MAX_CONFIG_FILE_BYTES).byteLength).toBe(MAX_CONFIG_FILE_BYTES);
    },
    QUICK,
  );
});

describe("YAML aliases", () => {
  const bomb = [
    'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
    "",
  ].join("\n");

  it(
    "an alias bomb is a ConfigError located at its first alias",
    () => {
      let thrown: unknown;
      try {
        parseYamlText("bomb.yaml", bomb);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).issues).toEqual([
        expect.objectContaining({ file: "bomb.yaml", line: 2, column: 8 }),
      ]);
      expect((thrown as ConfigError).message).toContain("YAML aliases expand to too many nodes");
    },
    QUICK,
  );

  it("a few aliases are fine", () => {
    const yaml = parseYamlText("ok.yaml", "stage: &s { id: main, groups: [M, PS] }\nagain: *s\n");
    expect(yaml.data).toEqual({
      stage: { id: "main", groups: ["M", "PS"] },
      again: { id: "main", groups: ["M", "PS"] },
    });
  });
});
