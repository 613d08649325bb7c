import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";
import { buildOnce, CLI } from "./cli.js";

/**
 * Issue 12, defects 5 and 7, as a user meets them: hostile ids and keys, and files that are not
 * config files (`/dev/zero`, `/dev/urandom`, a FIFO, a huge file, a YAML alias bomb) named where a
 * config file belongs. Every command must exit 1 with `file:line:column: field: message` — quickly,
 * and never with a stack trace (exit 70), a hang or a balloon.
 */

beforeAll(buildOnce, 180_000);

/** A run that hangs fails here (the child is killed), long before the test's own timeout. */
const RUN_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 20_000;
/** "Quickly": a refused file costs a start-up of node, nothing more (with room for a busy machine). */
const QUICK_MS = 8_000;

function greenwave(cwd: string, ...args: string[]) {
  const started = performance.now();
  const run = spawnSync("node", [join(process.cwd(), CLI), ...args], {
    cwd,
    encoding: "utf8",
    timeout: RUN_TIMEOUT_MS,
    env: withoutBrokerEnvironment(),
  });
  return { ...run, ms: performance.now() - started };
}

/** The runs use no broker unless told: a developer's GREENWAVE_BROKER_* must not change them. */
function withoutBrokerEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GREENWAVE_BROKER_URL;
  delete env.GREENWAVE_BROKER_PASSWORD;
  return env;
}

type Run = ReturnType<typeof greenwave>;

/** Exit 1 with a located message matching `pattern`, no stack trace, in time. */
function expectLocatedRefusal(run: Run, pattern: RegExp): void {
  const output = `exit ${run.status} signal ${run.signal} after ${Math.round(run.ms)} ms\n${run.stderr}`;
  expect(run.signal, output).toBeNull();
  expect(run.status, output).toBe(1);
  expect(run.stderr, output).toMatch(pattern);
  expect(run.stderr, output).not.toMatch(/^\s+at /m);
  expect(run.stderr, output).not.toContain("internal error");
  expect(run.ms, output).toBeLessThan(QUICK_MS);
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** A one-intersection corridor (x1, with an I/O module) in a temp directory, to break on purpose. */
function fixture() {
  const written = writeCorridorFixture(1, { devicePort: () => 1502 });
  cleanups.push(() => rmSync(written.dir, { recursive: true, force: true }));
  const edit = (name: string, from: string | RegExp, to: string) => {
    const file = join(written.dir, name);
    const before = readFileSync(file, "utf8");
    const after = before.replace(from, to);
    expect(after, `${name}: nothing to replace for ${String(from)}`).not.toBe(before);
    writeFileSync(file, after);
  };
  /** A FIFO in the fixture's directory, by the name the runs (there) and the config files use. */
  const mkfifo = (name: string) => {
    const made = spawnSync("mkfifo", [join(written.dir, name)]);
    expect(made.status, String(made.stderr)).toBe(0);
    return name;
  };
  return { dir: written.dir, edit, mkfifo };
}

const HOSTILE_KEYS = ["__proto__", "constructor", "valueOf", "toString", "hasOwnProperty"] as const;

describe("hostile ids and keys on the command line (defect 5)", () => {
  it.each(HOSTILE_KEYS)(
    "an intersection named %s: config check, plan check and gateway exit 1 with a located error",
    (key) => {
      const f = fixture();
      f.edit("x1.yaml", /^id: x1$/m, `id: ${JSON.stringify(key)}`);
      f.edit("corridor.yaml", "{ id: x1,", `{ id: ${JSON.stringify(key)},`);
      const located = new RegExp(`^x1\\.yaml:\\d+:\\d+: id: "${key}"`, "m");
      expectLocatedRefusal(greenwave(f.dir, "config", "check", "x1.yaml"), located);
      expectLocatedRefusal(greenwave(f.dir, "plan", "check", "--intersection", "x1.yaml", "next"), located);
      expectLocatedRefusal(greenwave(f.dir, "gateway", "--config", "x1.yaml"), located);
      expectLocatedRefusal(
        greenwave(f.dir, "config", "check", "corridor.yaml"),
        new RegExp(`^corridor\\.yaml:\\d+:\\d+: intersections\\[0\\]\\.id: "${key}"`, "m"),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it.each(HOSTILE_KEYS)(
    "a plan with a part named %s: config check and plan check exit 1, naming the part",
    (key) => {
      const f = fixture();
      const plan = join(f.dir, "plans", "next.yaml");
      const text = readFileSync(plan, "utf8");
      writeFileSync(plan, `${text}${text.slice(text.indexOf("  x1:\n")).replace("  x1:", `  "${key}":`)}`);
      const located = new RegExp(`^plans/next\\.yaml:\\d+:\\d+: intersections\\.${key}: `, "m");
      expectLocatedRefusal(greenwave(f.dir, "config", "check", "plans/next.yaml"), located);
      expectLocatedRefusal(greenwave(f.dir, "plan", "check", "--intersection", "x1.yaml", "next"), located);
    },
    TEST_TIMEOUT_MS,
  );
});

describe("files that are not config files (defect 7)", () => {
  const NOT_FILES = [
    ["/dev/zero", () => "/dev/zero", "is a character device, not a regular file"],
    ["/dev/urandom", () => "/dev/urandom", "is a character device, not a regular file"],
    [
      "a FIFO",
      (f: ReturnType<typeof fixture>) => f.mkfifo("pipe.yaml"),
      "is a named pipe (FIFO), not a regular file",
    ],
  ] as const;

  it.each(NOT_FILES)(
    "%s as the corridor: config check and gateway exit 1 at the corridor field",
    (_, path, why) => {
      const f = fixture();
      const target = path(f);
      f.edit("x1.yaml", /^corridor: corridor\.yaml$/m, `corridor: ${target}`);
      const located = new RegExp(
        `^x1\\.yaml:\\d+:\\d+: corridor: cannot read the corridor file ${target}: ${why.replace(/[()]/g, "\\$&")}$`,
        "m",
      );
      expectLocatedRefusal(greenwave(f.dir, "config", "check", "x1.yaml"), located);
      expectLocatedRefusal(greenwave(f.dir, "gateway", "--config", "x1.yaml"), located);
      expectLocatedRefusal(greenwave(f.dir, "plan", "check", "--intersection", "x1.yaml", "next"), located);
    },
    TEST_TIMEOUT_MS,
  );

  it.each(NOT_FILES)(
    "%s as a device profile: config check exits 1 at the profile field, sim io-module exits 1",
    (_, path, why) => {
      const f = fixture();
      const target = path(f);
      f.edit("x1.yaml", /profile: .*$/m, `profile: ${target}`);
      expectLocatedRefusal(
        greenwave(f.dir, "config", "check", "x1.yaml"),
        new RegExp(
          `^x1\\.yaml:\\d+:\\d+: devices\\[0\\]\\.profile: device io1: cannot read its profile ${target}: `,
          "m",
        ),
      );
      expectLocatedRefusal(
        greenwave(f.dir, "sim", "io-module", "--profile", target, "--tcp", "0"),
        new RegExp(`^${target}: cannot read: ${why.replace(/[()]/g, "\\$&")}$`, "m"),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it.each(NOT_FILES)(
    "%s as a config file, a plan to push or a users file: exit 1, naming the file",
    (_, path, why) => {
      const f = fixture();
      const target = path(f);
      const refusal = new RegExp(`^${target}: cannot read: ${why.replace(/[()]/g, "\\$&")}$`, "m");
      expectLocatedRefusal(greenwave(f.dir, "config", "check", target), refusal);
      expectLocatedRefusal(
        greenwave(f.dir, "plan", "push", "--corridor", "corridor.yaml", "--plan", target),
        refusal,
      );
      expectLocatedRefusal(greenwave(f.dir, "broker", "--port", "0", "--users", target), refusal);
    },
    TEST_TIMEOUT_MS,
  );

  it.each(NOT_FILES)(
    "%s as a password file: a usage error (exit 2) naming the flag, at once",
    (_, path, why) => {
      const f = fixture();
      const target = path(f);
      const run = greenwave(
        f.dir,
        "status",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--password-file",
        target,
        "--timeout-ms",
        "500",
      );
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(`cannot read the password file (--password-file) ${target}: ${why}`);
      expect(run.ms).toBeLessThan(QUICK_MS);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "a corridor file over 1 MB is refused by its size, before it is read",
    () => {
      const f = fixture();
      const corridor = join(f.dir, "corridor.yaml");
      writeFileSync(corridor, `${readFileSync(corridor, "utf8")}${"# padding\n".repeat(110_000)}`);
      expectLocatedRefusal(
        greenwave(f.dir, "config", "check", "x1.yaml"),
        /^x1\.yaml:\d+:\d+: corridor: cannot read the corridor file corridor\.yaml: is 1\d{6} bytes; the limit is 1000000 bytes$/m,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "a YAML alias bomb: exit 1 at its first alias, no stack trace",
    () => {
      const f = fixture();
      const bomb = [
        'lol1: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        "lol2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
        "lol3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "lol4: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
        "lol5: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
        "lol6: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]",
        "lol7: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]",
        "lol8: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]",
        "lol9: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]",
      ].join("\n");
      writeFileSync(
        join(f.dir, "x1.yaml"),
        `${readFileSync(join(f.dir, "x1.yaml"), "utf8")}x-bomb:\n${bomb.replace(/^/gm, "  ")}\n`,
      );
      const located = /^x1\.yaml:\d+:\d+: YAML aliases expand to too many nodes/m;
      expectLocatedRefusal(greenwave(f.dir, "config", "check", "x1.yaml"), located);
      expectLocatedRefusal(greenwave(f.dir, "gateway", "--config", "x1.yaml"), located);
    },
    TEST_TIMEOUT_MS,
  );
});
