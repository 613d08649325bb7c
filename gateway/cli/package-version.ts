import { readFileSync } from "node:fs";

/** This greenwave's version, from its package.json (dist/gateway/cli/ is three levels below it). */
export function packageVersion(): string {
  const text = readFileSync(new URL("../../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}
