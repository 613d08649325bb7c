import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { layoutModules } from "../../devices/io-map.js";
import { checkConfigFile, checkPlanForIntersection } from "../../gateway/config/check.js";
import { ConfigError, formatIssue, type LocatedIssue } from "../../gateway/config/errors.js";
import {
  compileIntersectionPlan,
  fileKindOf,
  type IntersectionSetup,
  loadIntersectionSetup,
  loadPlan,
  loadPlanData,
} from "../../gateway/config/load.js";
import { forbiddenKeyIssues } from "../../gateway/config/validate.js";
import { parseYamlText } from "../../gateway/config/yaml-file.js";
import { TOKENS_PER_EPOCH } from "../../gateway/core/corridor/lease.js";
import { CorridorParticipant, type ParticipantHost } from "../../gateway/node/corridor-participant.js";
import { inboxTopic, parseCorridorMessage } from "../../gateway/protocol/corridor-messages.js";
import type { CorridorBody, CorridorEnvelope } from "../../gateway/protocol/corridor-messages.js";
import { parseCommand } from "../../gateway/protocol/messages.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";
import { writeCorridorFixture } from "../../simulators/fixtures/corridor-fixture.js";

/**
 * Issue 12, defect 5: a key that comes from input — an id in a config file, a plan's part, an id in
 * a PREPARE, a key in an operator's command — must never find what every JavaScript object inherits
 * (`valueOf`, `toString`, `constructor`, `hasOwnProperty`) or reach its prototype (`__proto__`).
 * Each such input gets a located, named error (or a no vote, or a refused command), never a TypeError.
 */
const HOSTILE_KEYS = ["__proto__", "constructor", "valueOf", "toString", "hasOwnProperty"] as const;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** A one-intersection corridor (x1, with an I/O module) in a temp directory. */
function fixture() {
  const written = writeCorridorFixture(1, { devicePort: () => 1502 });
  cleanups.push(() => rmSync(written.dir, { recursive: true, force: true }));
  const file = (name: string) => join(written.dir, name);
  const edit = (name: string, from: string | RegExp, to: string) => {
    const before = readFileSync(file(name), "utf8");
    const after = before.replace(from, to);
    expect(after, `${name}: nothing to replace for ${String(from)}`).not.toBe(before);
    writeFileSync(file(name), after);
  };
  return { ...written, file, edit };
}

/** A key as a YAML key: `__proto__` quoted or not means the same to YAML; quoted is the hostile case. */
const yamlKey = (key: string) => JSON.stringify(key);

/** Checks a file and expects one located issue at `path` that names the key, without throwing. */
function expectLocatedIssue(issues: readonly LocatedIssue[], file: string, path: string, key: string): void {
  const text = issues.map(formatIssue).join("\n");
  const issue = issues.find((i) => i.file === file && formatIssue(i).includes(`: ${path}`));
  expect(issue, `no issue at ${path} in ${file}; got:\n${text}`).toBeDefined();
  expect(issue?.line, `not located: ${text}`).toBeGreaterThan(0);
  expect(formatIssue(issue as LocatedIssue)).toContain(key);
}

describe("config files: keys and ids from YAML", () => {
  it.each(HOSTILE_KEYS)("intersection id %s: refused where it is written, no TypeError", (key) => {
    const f = fixture();
    f.edit("x1.yaml", /^id: x1$/m, `id: ${yamlKey(key)}`);
    f.edit("corridor.yaml", "{ id: x1,", `{ id: ${yamlKey(key)},`);
    const report = checkConfigFile(f.file("x1.yaml"));
    expectLocatedIssue(report.issues, f.file("x1.yaml"), "id", key);
    const corridor = checkConfigFile(f.corridor);
    expectLocatedIssue(corridor.issues, f.corridor, "intersections[0].id", key);
  });

  it.each(HOSTILE_KEYS)("group id %s: refused", (key) => {
    const f = fixture();
    f.edit("x1.yaml", "{ id: M,", `{ id: ${yamlKey(key)},`);
    expectLocatedIssue(checkConfigFile(f.file("x1.yaml")).issues, f.file("x1.yaml"), "groups[0].id", key);
  });

  it.each(HOSTILE_KEYS)("permissive key %s: refused, not dropped or looked up", (key) => {
    const f = fixture();
    f.edit("x1.yaml", /^ {2}M: \[PS\]$/m, `  ${yamlKey(key)}: [PS]`);
    expectLocatedIssue(
      checkConfigFile(f.file("x1.yaml")).issues,
      f.file("x1.yaml"),
      `permissive.${key}`,
      key,
    );
  });

  it.each(HOSTILE_KEYS)("device id, channel group and lamp %s: refused", (key) => {
    for (const [from, to, path] of [
      ["- id: io1", `- id: ${yamlKey(key)}`, "devices[0].id"],
      ["      M: { red: 0,", `      ${yamlKey(key)}: { red: 0,`, `devices[0].channels.${key}`],
      // Lamp names are a closed set: zod names the stranger as an unrecognized key of the group.
      ["M: { red: 0, yellow: 1,", `M: { ${yamlKey(key)}: 0, yellow: 1,`, "devices[0].channels.M"],
    ] as const) {
      const f = fixture();
      f.edit("x1.yaml", from, to);
      expectLocatedIssue(checkConfigFile(f.file("x1.yaml")).issues, f.file("x1.yaml"), path, key);
    }
  });

  it.each(HOSTILE_KEYS)("kind: %s is an unknown file kind", (key) => {
    expect(() => fileKindOf(parseYamlText("k.yaml", `kind: ${yamlKey(key)}\n`))).toThrow(/unknown file kind/);
  });
});

describe("plan files", () => {
  /** The `next` plan with an extra part (a copy of x1's) under the hostile key. */
  function planWithPart(key: string) {
    const f = fixture();
    const plan = f.file("plans/next.yaml");
    const text = readFileSync(plan, "utf8");
    const part = text.slice(text.indexOf("  x1:\n")).replace("  x1:", `  ${yamlKey(key)}:`);
    writeFileSync(plan, `${text}${part}`);
    return { f, plan };
  }

  it.each(HOSTILE_KEYS)("a part named %s: config check and plan check refuse it, located", (key) => {
    const { f, plan } = planWithPart(key);
    expectLocatedIssue(checkConfigFile(plan).issues, plan, `intersections.${key}`, key);
    expectLocatedIssue(
      checkPlanForIntersection(f.file("x1.yaml"), plan).issues,
      plan,
      `intersections.${key}`,
      key,
    );
    expectLocatedIssue(checkConfigFile(f.corridor).issues, plan, `intersections.${key}`, key);
  });

  it.each(HOSTILE_KEYS)(
    "an intersection named %s that the plan has no part for: a located error, not an inherited member",
    (key) => {
      const f = fixture();
      const setup = loadIntersectionSetup(f.file("x1.yaml"));
      const plan = loadPlan(f.file("plans/next.yaml"));
      const named = { ...setup.intersection.intersection, id: key };
      let thrown: unknown;
      try {
        compileIntersectionPlan(named, plan, setup.corridor);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).message).toContain(`has no part for intersection ${key}`);
    },
  );
});

describe("a corridor PREPARE naming hostile ids, delivered to a participant", () => {
  /** A participant for x1 of the fixture (renamed `me`), with a real store and a host that records. */
  function participant(me = "x1") {
    const f = fixture();
    const loaded = loadIntersectionSetup(f.file("x1.yaml"));
    const setup: IntersectionSetup = {
      ...loaded,
      intersection: { ...loaded.intersection, intersection: { ...loaded.intersection.intersection, id: me } },
    };
    const dataDir = mkdtempSync(join(tmpdir(), "greenwave-proto-"));
    const store = GatewayStore.open(dataDir);
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    cleanups.push(() => store.close());
    const sent: { to: string; body: CorridorBody }[] = [];
    const host: ParticipantHost = {
      send: (to, body) => sent.push({ to, body }),
      schedulePlan: () => {},
      planRefusal: () => null,
      withdrawPlan: () => {},
      audit: () => {},
      changed: () => {},
    };
    const log = createLogger("test", "silent");
    const node = new CorridorParticipant(
      setup,
      store,
      { now: () => ({ monoMs: 0, wallMs: Date.now() }) },
      log,
      host,
    );
    const votes = () => sent.filter((m) => m.body.type === "vote").map((m) => m.body);
    // The coordinator holds this intersection's lease: a PREPARE is taken only under it.
    node.onMessage({
      from: "@op",
      to: me,
      sentAtWallMs: Date.now(),
      // A lease serves the transaction it was taken for: the one `prepare` sends.
      body: { type: "acquire", requestId: `${PROTO_TXN}/0/${me}`, ttlMs: 15_000 },
    });
    const token = node.lock?.token ?? 2 * TOKENS_PER_EPOCH;
    return { f, me, node, votes, token };
  }

  const PROTO_TXN = "t-proto";

  function prepare(
    me: string,
    planFile: unknown,
    participants: readonly string[] = [me],
    token = 2 * TOKENS_PER_EPOCH,
  ): CorridorEnvelope {
    const now = Date.now();
    return {
      v: 1,
      from: "@op",
      to: me,
      sentAtWallMs: now,
      body: {
        type: "prepare",
        txnId: PROTO_TXN,
        token,
        participants: [...participants],
        plan: { id: "next", version: 1 },
        planFile,
        activationWallMs: now + 60_000,
      },
    };
  }

  const nextPlan = (p: ReturnType<typeof participant>) =>
    loadPlan(p.f.file("plans/next.yaml")).raw as unknown as Record<string, unknown>;

  it("a good PREPARE gets a yes vote (the harness works)", () => {
    const p = participant();
    p.node.onMessage(prepare("x1", nextPlan(p), ["x1"], p.token));
    expect(p.votes()).toEqual([expect.objectContaining({ yes: true })]);
  });

  it.each(HOSTILE_KEYS)("a participant named %s that the plan has no part for votes no, and lives", (key) => {
    const p = participant(key);
    expect(() => p.node.onMessage(prepare(key, nextPlan(p), [key], p.token))).not.toThrow();
    expect(p.votes()).toEqual([
      expect.objectContaining({
        yes: false,
        reason: expect.stringContaining(`has no part for intersection ${key}`),
      }),
    ]);
  });

  it.each(HOSTILE_KEYS)("a plan whose parts include %s gets a no vote naming it", (key) => {
    const p = participant();
    const plan = nextPlan(p);
    const parts = plan.intersections as Record<string, unknown>;
    // JSON.parse makes `__proto__` an own key, as a message from the network would.
    const hostile = JSON.parse(
      JSON.stringify({ ...plan, intersections: {} }).replace(
        '"intersections":{}',
        `"intersections":{"x1":${JSON.stringify(parts.x1)},${JSON.stringify(key)}:${JSON.stringify(parts.x1)}}`,
      ),
    ) as unknown;
    p.node.onMessage(prepare("x1", hostile, ["x1"], p.token));
    expect(p.votes()).toEqual([
      expect.objectContaining({ yes: false, reason: expect.stringContaining(`intersections.${key}`) }),
    ]);
  });

  it.each(HOSTILE_KEYS)("on the wire, %s as addressee or participant is refused as invalid", (key) => {
    const p = participant();
    const toIt = prepare(key, nextPlan(p));
    const withIt = prepare("x1", nextPlan(p), ["x1", key]);
    for (const envelope of [toIt, withIt]) {
      const topic = inboxTopic("test-corridor", envelope.to, envelope.from);
      const parsed = parseCorridorMessage(topic, Buffer.from(JSON.stringify(envelope)));
      expect(parsed).toEqual({ ok: false, reason: "invalid" });
    }
  });
});

describe("operator commands", () => {
  const payload = (text: string) => Buffer.from(text);

  it.each(HOSTILE_KEYS)("a command with a %s key is refused as invalid, never thrown", (key) => {
    for (const name of ["status", "flash", "fault-reset", "txn-resolve", "plan-push"]) {
      const parsed = parseCommand(
        name,
        payload(`{"v":1,"id":"c1","by":"op",${JSON.stringify(key)}:{"v":2,"on":true}}`),
      );
      expect(parsed).toMatchObject({ ok: false, code: "invalid", id: "c1" });
    }
  });

  it("a command name that every object answers to is an unknown command", () => {
    for (const key of HOSTILE_KEYS)
      expect(parseCommand(key, payload('{"v":1,"id":"c1","by":"op"}'))).toMatchObject({
        ok: false,
        code: "unknown-command",
      });
  });

  it.each(HOSTILE_KEYS)(
    "a plan push whose plan has a %s part: the plan is refused, naming the part",
    (key) => {
      const f = fixture();
      const plan = loadPlan(f.file("plans/next.yaml")).raw;
      const part = JSON.stringify(plan.intersections.x1);
      const text = `{"v":1,"id":"c1","by":"op","atWallMs":null,"leadMs":5000,"ackTimeoutMs":1000,"planFile":${JSON.stringify(
        plan,
      ).replace('"intersections":{', `"intersections":{${JSON.stringify(key)}:${part},`)}}`;
      const parsed = parseCommand("plan-push", payload(text));
      const command = parsed.ok ? parsed.command : null;
      if (command?.name !== "plan-push") throw new Error("the command itself is valid");
      expect(() => loadPlanData("plan-push c1", command.planFile)).toThrow(`intersections.${key}: `);
    },
  );
});

describe("device channel maps", () => {
  it.each(HOSTILE_KEYS)("a lamp named %s is not a lamp", (key) => {
    const f = fixture();
    const setup = loadIntersectionSetup(f.file("x1.yaml"));
    const module = setup.intersection.modules[0];
    if (!module) throw new Error("the fixture has a module");
    const { issues } = layoutModules(setup.intersection.intersection, [
      {
        id: "io1",
        profile: module.profile,
        link: module.link,
        unitId: 1,
        timeoutMs: 200,
        retries: 1,
        faultWindowMs: 1000,
        watchdogMs: 1000,
        channels: JSON.parse(`{"M":{${JSON.stringify(key)}:0}}`) as Record<string, Record<string, number>>,
      },
    ]);
    expect(issues.map((i) => i.message).join("\n")).toContain(`not ${key}`);
  });
});

describe("the __proto__ walk", () => {
  it("finds the key at any depth and gives its path", () => {
    const data = JSON.parse('{"a":[{"b":{"__proto__":{"c":1}}}]}') as unknown;
    expect(forbiddenKeyIssues(data).map((i) => i.path)).toEqual([["a", 0, "b", "__proto__"]]);
  });

  it("walks deeply nested JSON without recursion, quickly", () => {
    const depth = 60_000;
    const data = JSON.parse(`${"[".repeat(depth)}{"__proto__":1}${"]".repeat(depth)}`) as unknown;
    const started = performance.now();
    const issues = forbiddenKeyIssues(data);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toHaveLength(depth + 1);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
