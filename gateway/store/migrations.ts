/**
 * The store's schema, as an append-only list of migrations: migration i brings `user_version` from i
 * to i + 1. Never edit a shipped migration; add one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
  CREATE TABLE latch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    groups TEXT NOT NULL,
    at_wall_ms INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE plans (
    plan_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (plan_id, version)
  ) STRICT;
  CREATE TABLE plan_in_force (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    plan_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    since_wall_ms INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_wall_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    actor TEXT,
    detail TEXT NOT NULL
  ) STRICT;
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  `,
  // 2: the corridor protocol: the lease authority's epoch, the participant's fencing floor and its
  // transactions (PREPARED, then the outcome; finished ones are the tombstones).
  `
  CREATE TABLE lease_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL) STRICT;
  CREATE TABLE fencing (id INTEGER PRIMARY KEY CHECK (id = 1), highest_token INTEGER NOT NULL) STRICT;
  CREATE TABLE txns (
    txn_id TEXT PRIMARY KEY,
    coordinator TEXT NOT NULL,
    token INTEGER NOT NULL,
    participants TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    plan_version INTEGER NOT NULL,
    activation_wall_ms INTEGER NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('prepared', 'committed', 'aborted')),
    updated_at_ms INTEGER NOT NULL
  ) STRICT;
  `,
  // 3: the activation instant of the committed change that brought the plan in force (null for a
  // configured plan): a restart resumes the committed changes after it.
  `
  ALTER TABLE plan_in_force ADD COLUMN activation_wall_ms INTEGER;
  `,
  // 4: the newest transactions are what the status, a restart and the tombstones read, every time.
  `
  CREATE INDEX txns_by_update ON txns (updated_at_ms);
  `,
  // 5: a plan's content digest beside its id and version (its identity, core/corridor/plan-identity.ts);
  // null for a plan stored before digests (its compiled body is compared instead, then the digest filled in).
  `
  ALTER TABLE plans ADD COLUMN digest TEXT;
  `,
  // 6: time-of-day schedules (core/schedule/): a manual change's end over the schedule travels with its
  // transaction (JSON, null: until the next scheduled change); the committed schedule that governs, from
  // when, the manual override in force (JSON) and the last changes the schedule runner took (JSON: a
  // restart's resume hands them again) survive a restart.
  `
  ALTER TABLE txns ADD COLUMN plan_until TEXT;
  CREATE TABLE schedule_in_force (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schedule_key TEXT,
    version INTEGER,
    from_wall_ms INTEGER,
    override TEXT,
    taken TEXT
  ) STRICT;
  `,
  // 7: the high-resolution event log (core/event-log, Indiana enumerations): one row per event, written
  // in batches; read by time (the index) and by sequence (a collector's resume point).
  `
  CREATE TABLE hires_events (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    code INTEGER NOT NULL,
    param INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX hires_by_time ON hires_events (at_ms);
  `,
  // 8: how the last run on this store ended (run-record.ts): the intersection configuration's digest,
  // the plan in force, and whether it stopped cleanly: a restart proves its start-up from it.
  `
  CREATE TABLE run_record (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    config_digest TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    plan_version INTEGER NOT NULL,
    plan_digest TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    clean_stop_at_ms INTEGER
  ) STRICT;
  `,
  // 9: signed decisions (core/corridor/decision-signature.ts): the decision key a PREPARE carried and
  // the plan's digest it covers, kept with PREPARED; the coordinator's signature of the outcome, kept
  // with it to forward to peers that ask.
  `
  ALTER TABLE txns ADD COLUMN decision_key TEXT;
  ALTER TABLE txns ADD COLUMN plan_digest TEXT;
  ALTER TABLE txns ADD COLUMN decision_signature TEXT;
  `,
  // 10: plan cancels (core/corridor/plan-cancel.ts): the cancel that took a committed change back, so
  // that a restart does not hand it to the controller again.
  `
  ALTER TABLE txns ADD COLUMN cancelled_by TEXT;
  `,
  // 11: the corridor's keyring in force (core/corridor/keyring.ts): taken in the same forced write as
  // the commit of its transaction, and kept apart from the transactions, which are pruned.
  `
  CREATE TABLE keyring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    adopted_at_ms INTEGER NOT NULL
  ) STRICT;
  `,
];
