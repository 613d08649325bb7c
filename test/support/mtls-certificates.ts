import { mkdirSync, mkdtempSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDocStep } from "./doc-steps.js";

const DOC = "docs/mtls.md";

/** A client's certificate and key as the client reads them (PEM), and their files. */
export interface Issued {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A CA made by docs/mtls.md's steps, in a directory of its own, with the broker's certificate for 127.0.0.1. */
export interface TestCa {
  readonly dir: string;
  readonly ca: Buffer;
  readonly caFile: string;
  readonly broker: Issued;
  /**
   * Steps 3 and 4 for `name`: its key and request, then its certificate for `days` (825; -1: ended
   * already), kept as `<file>.pem` and `<file>.key` (default: the name).
   */
  issue(name: string, options?: { days?: number; file?: string }): Issued;
}

function issued(dir: string, name: string): Issued {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
}

/**
 * A client CA exactly as docs/mtls.md makes one (steps 1 and 2, then 3 and 4 per client), under
 * `parent` (a temp directory when none). Needs openssl and bash.
 */
export function makeTestCa(parent?: string): TestCa {
  const dir = parent
    ? join(parent, `ca-${Math.random().toString(36).slice(2, 8)}`)
    : mkdtempSync(join(tmpdir(), "greenwave-ca-"));
  mkdirSync(dir, { recursive: true });
  runDocStep(DOC, "mtls-ca", dir);
  runDocStep(DOC, "mtls-broker", dir, { BROKER_SAN: "IP:127.0.0.1" });
  return {
    dir,
    ca: readFileSync(join(dir, "ca.pem")),
    caFile: join(dir, "ca.pem"),
    broker: issued(dir, "broker"),
    issue(name, options = {}) {
      runDocStep(DOC, "mtls-request", dir, { NAME: name });
      runDocStep(DOC, "mtls-sign", dir, { NAME: name, DAYS: String(options.days ?? 825) });
      const file = options.file ?? name;
      if (file !== name)
        for (const ext of ["pem", "key"])
          renameSync(join(dir, `${name}.${ext}`), join(dir, `${file}.${ext}`));
      return issued(dir, file);
    },
  };
}
