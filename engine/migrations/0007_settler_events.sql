-- Settler events of blocks deep enough not to change, as the EVM adapters read them: kept so that a
-- restarted instance (or another one) does not read a long history again. `source` names the chain
-- and its two settlers; `event` is the log and where it was emitted, as JSON. Several instances may
-- read one range at once: an event is stored once (its block and index in it).
CREATE TABLE settler_events (
    source      TEXT NOT NULL,
    block       BIGINT NOT NULL,
    log_index   BIGINT NOT NULL,
    order_id    TEXT NOT NULL,
    event       TEXT NOT NULL,
    PRIMARY KEY (source, block, log_index)
);
CREATE INDEX settler_events_by_order ON settler_events (source, order_id);

-- How far the settler events of each source were read.
CREATE TABLE event_cursors (
    source      TEXT PRIMARY KEY,
    read_to     BIGINT NOT NULL
);
