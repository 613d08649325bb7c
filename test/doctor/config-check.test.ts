import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkConfig } from "../../gateway/doctor/config-check.js";
import { parseGatewayArgs, readGatewayEnv } from "../../gateway/doctor/gateway-env.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("greenwave doctor: the intersection file", () => {
  it("a valid file, loaded as the gateway loads it: PASS with what it holds", () => {
    const { result, setup } = checkConfig("config/intersections/elm.yaml");
    expect(result).toEqual({
      check: "config",
      status: "PASS",
      detail:
        "config/intersections/elm.yaml: intersection elm of corridor main-street, initial plan off-peak, devices io1 (generic-do32-di32)",
      action: null,
    });
    expect(setup?.intersection.modules).toHaveLength(1);
  });

  it("an invalid file: FAIL with the loader's own location (file:line:column: field)", () => {
    const { result, setup } = checkConfig("config/broken/duplicate-group.yaml");
    expect(setup).toBeNull();
    expect(result.status).toBe("FAIL");
    expect(result.detail).toBe(
      "config/broken/duplicate-group.yaml:11:11: groups[1].id: group M is defined twice",
    );
    expect(result.action).toContain("greenwave config check config/broken/duplicate-group.yaml");
  });

  it("no file: FAIL saying so, and the flag that names it", () => {
    const { result } = checkConfig("/etc/greenwave/no-such-intersection.yaml");
    expect(result).toMatchObject({
      status: "FAIL",
      detail: "cannot read /etc/greenwave/no-such-intersection.yaml: no such file",
      action: "give the intersection file with --config FILE",
    });
  });
});

describe("the service's env file (util.parseEnv) and GREENWAVE_ARGS", () => {
  it("reads the broker URL and the flags the unit passes, split as systemd splits $GREENWAVE_ARGS", () => {
    const dir = mkdtempSync(join(tmpdir(), "greenwave-doctor-env-"));
    dirs.push(dir);
    const file = join(dir, "gateway.env");
    writeFileSync(
      file,
      [
        "# /etc/greenwave/gateway.env",
        "GREENWAVE_BROKER_URL=mqtts://broker.city.example:8883",
        'GREENWAVE_ARGS="--username gw-elm --http 127.0.0.1:9100 --ca-file=/etc/greenwave/ca.pem"',
        "",
      ].join("\n"),
    );
    expect(readGatewayEnv(file)).toEqual({
      file,
      brokerUrl: "mqtts://broker.city.example:8883",
      args: { username: "gw-elm", caFile: "/etc/greenwave/ca.pem" },
    });
  });

  it("reads a client certificate's flags (docs/mtls.md)", () => {
    expect(
      parseGatewayArgs("--cert-file /etc/greenwave/client.pem --key-file=/etc/greenwave/client.key --http x"),
    ).toEqual({ certFile: "/etc/greenwave/client.pem", keyFile: "/etc/greenwave/client.key" });
  });

  it("the last of a repeated flag wins; unknown flags and a dangling flag are ignored", () => {
    expect(parseGatewayArgs("  --username a --tick-ms 100 --username b --data-dir /srv/gw --broker")).toEqual(
      {
        username: "b",
        dataDir: "/srv/gw",
      },
    );
    expect(parseGatewayArgs("--constructor x --__proto__ y")).toEqual({});
  });
});
