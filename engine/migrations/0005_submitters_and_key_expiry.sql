-- Who submitted each intent over the API: the API key's name (the first key that submitted it). A
-- `dapp` key reads only the intents it submitted; operators read every intent.
CREATE TABLE intent_submitters (
    intent_id   TEXT PRIMARY KEY,
    key_name    TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- Idempotency keys expire: the expired ones are found, and deleted, by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_ms);
