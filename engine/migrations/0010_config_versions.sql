-- Coordinated changes: what shapes execution as versioned, content-addressed bundles, each with a
-- lifecycle (proposed → validated → approved → scheduled → active → superseded or rolled back;
-- rejected), and the hash-chained record of every transition with who made it. Same conventions
-- as 0001.

-- A version: its id is the keccak-256 of its body (canonical JSON: keys sorted, no spaces), so
-- the same bundle proposed twice is one version. `number` counts versions in the order they were
-- proposed; `parent` is the version it changes (NULL for the first).
CREATE TABLE config_versions (
    id          TEXT PRIMARY KEY,
    number      BIGINT NOT NULL,
    parent      TEXT,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);
CREATE UNIQUE INDEX config_versions_by_number ON config_versions (number);

-- Every transition, in order, each carrying the hash of the one before (the first: zero), so a
-- record altered or removed afterwards is found by `verify`.
CREATE TABLE config_transitions (
    seq         BIGINT PRIMARY KEY,
    version     TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    by_name     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
