-- baton's saga log. One schema for SQLite and PostgreSQL: integers are BIGINT, hashes and ids are
-- 0x-prefixed lowercase hex TEXT, payloads are JSON TEXT, times are unix milliseconds.

CREATE TABLE intents (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- One saga per intent (the saga id is the intent id). `lease_*` and `fence` let one instance at a
-- time drive it when several share a PostgreSQL database.
CREATE TABLE sagas (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    outcome     TEXT,
    last_seq    BIGINT NOT NULL,
    last_hash   TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    fence       BIGINT NOT NULL DEFAULT 0,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

-- Append-only: every state change of a saga, each carrying the hash of the one before.
CREATE TABLE saga_events (
    saga_id     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    PRIMARY KEY (saga_id, seq)
);

-- The current state of each step (derived from the events; kept for queries and recovery).
CREATE TABLE steps (
    saga_id     TEXT NOT NULL,
    step        BIGINT NOT NULL,
    state       TEXT NOT NULL,
    tx_hash     TEXT,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (saga_id, step)
);

-- Solver inventory promised to a saga, until it ends or the lock expires.
CREATE TABLE reservations (
    saga_id     TEXT NOT NULL,
    chain       BIGINT NOT NULL,
    token       TEXT NOT NULL,
    amount      TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    PRIMARY KEY (saga_id, chain, token)
);
CREATE INDEX reservations_by_asset ON reservations (chain, token);

-- The next nonce per signing account and chain.
CREATE TABLE nonces (
    chain       BIGINT NOT NULL,
    signer      TEXT NOT NULL,
    next_nonce  BIGINT NOT NULL,
    PRIMARY KEY (chain, signer)
);
