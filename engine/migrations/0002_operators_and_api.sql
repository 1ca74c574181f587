-- What operators did and what the API remembers. Same conventions as 0001.

-- Every operator action (pause, resume, retry, emergency brake), who did it and when. Actions on one
-- saga are also events in its log (`retried`).
CREATE TABLE operator_actions (
    at_ms       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX operator_actions_by_time ON operator_actions (at_ms);

-- What is paused: a chain (`chain:<id>`) or everything (`all`, the emergency brake). No new
-- transaction is started there until the row is gone; it survives restarts.
CREATE TABLE pauses (
    scope       TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);

-- The API's `Idempotency-Key`s: the key (scoped by the API key's name), a hash of the request body,
-- and the intent it created.
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    body_hash   TEXT NOT NULL,
    intent_id   TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
