-- Webhooks: the endpoints dApps register for their API key, and a transactional outbox. The saga
-- log's writer inserts one outbox row per subscribed endpoint in the same commit as the event it
-- reports, so a crash loses no delivery; deliverers take due rows, post them, and delete each once
-- its endpoint answered 2xx (at least once). Same conventions as 0001.

-- An endpoint: whose (the API key's name), where, what it wants, its signing secret (`whsec_…`),
-- and since when it is failing (NULL: active). A failing endpoint gets nothing until re-enabled;
-- its messages wait in the outbox.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    key_name    TEXT NOT NULL,
    url         TEXT NOT NULL,
    topics      TEXT NOT NULL,
    description TEXT NOT NULL,
    secret      TEXT NOT NULL,
    failing_ms  BIGINT,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_key ON webhook_endpoints (key_name);

-- Which topics (`intent.started`, `intent.fulfilled`, …) each key's endpoints want: what the
-- writer joins an event to.
CREATE TABLE webhook_subscriptions (
    key_name    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    PRIMARY KEY (key_name, topic, endpoint_id)
);

-- A message not yet delivered: the saga event (by saga number and seq) for an endpoint, under a
-- topic; its attempts so far, when it is next due, when it was first due, and until when a
-- deliverer holds it (0: nobody).
CREATE TABLE webhook_outbox (
    endpoint_id TEXT NOT NULL,
    saga_num    BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    topic       TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    due_ms      BIGINT NOT NULL,
    first_ms    BIGINT NOT NULL,
    claim_until BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, saga_num, seq)
);
CREATE INDEX webhook_outbox_by_due ON webhook_outbox (due_ms);

-- Every delivery attempt: the endpoint's answer (NULL when none came) or the error, and how long.
CREATE TABLE webhook_attempts (
    endpoint_id TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, at_ms);
