import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCorridor, loadIntersectionSetup } from "../../gateway/config/load.js";
import { GatewayNode } from "../../gateway/node/gateway-node.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";

export const EXAMPLE_IDS = ["elm", "oak", "pine", "cedar"] as const;

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface CorridorNodes {
  readonly nodes: Map<string, GatewayNode>;
  readonly stores: Map<string, GatewayStore>;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * The example corridor's gateways, in this process, on their own SQLite stores in a temp directory,
 * without I/O modules (the lamps are computed and checked, and drive nothing).
 */
export async function startCorridorNodes(
  brokerUrl: string,
  options: {
    ids?: readonly string[];
    credentials?: (id: string) => Credentials;
    ca?: string | Buffer;
    beforeStart?: (id: string, store: GatewayStore) => void;
  } = {},
): Promise<CorridorNodes> {
  const corridor = loadCorridor("config/corridor.yaml");
  const dataDir = mkdtempSync(join(tmpdir(), "greenwave-mqtt-"));
  const nodes = new Map<string, GatewayNode>();
  const stores = new Map<string, GatewayStore>();
  for (const id of options.ids ?? EXAMPLE_IDS) {
    const file = corridor.intersectionFiles.get(id);
    if (!file) throw new Error(`no intersection ${id} in the example corridor`);
    const loaded = loadIntersectionSetup(file);
    const setup = { ...loaded, intersection: { ...loaded.intersection, modules: [] } };
    const store = GatewayStore.open(join(dataDir, id));
    options.beforeStart?.(id, store);
    stores.set(id, store);
    const credentials = options.credentials?.(id);
    nodes.set(
      id,
      await GatewayNode.start({
        setup,
        store,
        clock: systemClock,
        log: createLogger(`test-${id}`, "silent"),
        broker: { url: brokerUrl, ...(credentials ?? {}), ...(options.ca ? { ca: options.ca } : {}) },
        http: null,
      }),
    );
  }
  return {
    nodes,
    stores,
    dataDir,
    async stop() {
      await Promise.all([...nodes.values()].map((node) => node.stop()));
      for (const store of stores.values()) store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | null | undefined | false,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
