import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCorridor, loadIntersectionSetup } from "../../gateway/config/load.js";
import type { CorridorSettings } from "../../gateway/node/corridor-participant.js";
import { GatewayNode } from "../../gateway/node/gateway-node.js";
import { systemClock } from "../../gateway/shell/clock.js";
import { createLogger } from "../../gateway/shell/log.js";
import { GatewayStore } from "../../gateway/store/store.js";

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface CorridorNodes {
  readonly nodes: Map<string, GatewayNode>;
  readonly stores: Map<string, GatewayStore>;
  readonly dataDir: string;
  /** Stops one gateway (as a crash would, but cleanly closing its store). */
  kill(id: string): Promise<void>;
  /** Starts it again on the same store. */
  restart(id: string): Promise<GatewayNode>;
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
    corridorFile?: string;
    corridorSettings?: (id: string) => CorridorSettings;
  } = {},
): Promise<CorridorNodes> {
  const corridor = loadCorridor(options.corridorFile ?? "config/corridor.yaml");
  const dataDir = mkdtempSync(join(tmpdir(), "greenwave-mqtt-"));
  const nodes = new Map<string, GatewayNode>();
  const stores = new Map<string, GatewayStore>();
  const start = async (id: string) => {
    const file = corridor.intersectionFiles.get(id);
    if (!file) throw new Error(`no intersection ${id} in corridor ${corridor.raw.id}`);
    const loaded = loadIntersectionSetup(file);
    const setup = { ...loaded, intersection: { ...loaded.intersection, modules: [] } };
    const store = GatewayStore.open(join(dataDir, id));
    options.beforeStart?.(id, store);
    stores.set(id, store);
    const credentials = options.credentials?.(id);
    const settings = options.corridorSettings?.(id);
    const node = await GatewayNode.start({
      setup,
      store,
      clock: systemClock,
      log: createLogger(`test-${id}`, "silent"),
      broker: { url: brokerUrl, ...(credentials ?? {}), ...(options.ca ? { ca: options.ca } : {}) },
      http: null,
      ...(settings ? { corridor: settings } : {}),
    });
    nodes.set(id, node);
    return node;
  };
  const kill = async (id: string) => {
    await nodes.get(id)?.stop("cut");
    stores.get(id)?.close();
    nodes.delete(id);
    stores.delete(id);
  };
  for (const id of options.ids ?? [...corridor.intersectionFiles.keys()]) await start(id);
  return {
    nodes,
    stores,
    dataDir,
    kill,
    restart: async (id) => {
      await kill(id);
      return await start(id);
    },
    async stop() {
      await Promise.all([...nodes.values()].map((node) => node.stop("cut")));
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
