import { join } from "node:path";
import Database from "better-sqlite3";
import mqtt from "mqtt";

/**
 * One participant of the skeleton two-phase commit (bench/skeleton-2pc.ts): the same stack as a
 * gateway (mqtt.js over TCP, better-sqlite3 in WAL with synchronous = FULL, its own process) and none
 * of its logic, so that what a round costs here is the machine's share of a plan switch.
 *
 * Usage: node dist/bench/skeleton-participant.js BROKER_URL PARTICIPANT_ID DATA_DIR
 * Prints "ready" on stdout once subscribed; exits on SIGTERM, when stdin closes (the parent is gone)
 * or when the broker connection drops.
 */
const [url, id, dataDir] = process.argv.slice(2);
if (!url || !id || !dataDir) {
  process.stderr.write("usage: skeleton-participant BROKER_URL PARTICIPANT_ID DATA_DIR\n");
  process.exit(2);
}

// The gateway store's durability settings: every autocommit statement fsyncs the WAL, so each
// INSERT/UPDATE below is one forced write.
const db = new Database(join(dataDir, `${id}.db`));
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.exec("CREATE TABLE IF NOT EXISTS txn (txn TEXT PRIMARY KEY, plan TEXT NOT NULL, decision TEXT)");
const recordPrepare = db.prepare("INSERT INTO txn (txn, plan) VALUES (?, ?)");
const recordDecision = db.prepare("UPDATE txn SET decision = ? WHERE txn = ?");

const fail = (message: string): never => {
  process.stderr.write(`skeleton participant ${id}: ${message}\n`);
  process.exit(1);
};

const client = await mqtt
  .connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 })
  .catch((err: unknown) => fail(`cannot connect to ${url}: ${String(err)}`));
// Nagle off, as the gateways do: otherwise small replies wait for the peer's delayed ACK (~40 ms).
(client.stream as unknown as { setNoDelay(v: boolean): void }).setNoDelay(true);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // Bounded: exit even if the broker never acknowledges the DISCONNECT.
  setTimeout(() => process.exit(0), 2000).unref();
  client.end(true, () => {
    db.close();
    process.exit(0);
  });
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop).resume();
client.on("close", () => {
  if (!stopping) fail("broker connection closed");
});

const reply = (type: "granted" | "vote" | "ack", txn: string) =>
  client.publish(`skel/coord/in/${id}`, JSON.stringify({ type, txn }), { qos: 1 }, (err) => {
    if (err) process.stderr.write(`skeleton participant ${id}: publish ${type} failed: ${err.message}\n`);
  });

client.on("message", (_topic, payload) => {
  try {
    const msg = JSON.parse(payload.toString()) as { type?: string; txn?: string; plan?: string };
    const txn = String(msg.txn);
    switch (msg.type) {
      case "acquire":
        // Like the product's lease grant: answered from memory, nothing written.
        reply("granted", txn);
        break;
      case "prepare":
        // The plan travels as JSON text; parse it as a gateway would before voting, then force it.
        JSON.parse(String(msg.plan));
        recordPrepare.run(txn, String(msg.plan));
        reply("vote", txn);
        break;
      case "decision":
        recordDecision.run("commit", txn);
        reply("ack", txn);
        break;
      default:
        process.stderr.write(`skeleton participant ${id}: unknown message type ${String(msg.type)}\n`);
    }
  } catch (err) {
    // No reply: the coordinator's round times out and names this participant.
    process.stderr.write(`skeleton participant ${id}: ${String(err)}\n`);
  }
});

await client.subscribeAsync(`skel/${id}/in`, { qos: 1 });
process.stdout.write("ready\n");
