-- Sagas get a number in the order they were admitted, and the tables written on every step (events,
-- steps) are keyed by it instead of by the saga's id. Ids are hashes: keyed by them, each commit
-- wrote a random leaf page of every index per saga it touched; keyed by number, the sagas in flight
-- (the newest) share the last few pages. Same conventions as 0001.

ALTER TABLE sagas ADD COLUMN num BIGINT;
UPDATE sagas SET num = numbered.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY created_ms, id) AS n FROM sagas) AS numbered
WHERE sagas.id = numbered.id;
CREATE UNIQUE INDEX sagas_by_num ON sagas (num);

CREATE TABLE saga_events_by_num (
    saga_num    BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    PRIMARY KEY (saga_num, seq)
);
INSERT INTO saga_events_by_num (saga_num, seq, kind, payload, prev_hash, hash, at_ms)
SELECT s.num, e.seq, e.kind, e.payload, e.prev_hash, e.hash, e.at_ms
FROM saga_events e JOIN sagas s ON s.id = e.saga_id;
DROP TABLE saga_events;
ALTER TABLE saga_events_by_num RENAME TO saga_events;

CREATE TABLE steps_by_num (
    saga_num    BIGINT NOT NULL,
    step        BIGINT NOT NULL,
    state       TEXT NOT NULL,
    tx_hash     TEXT,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (saga_num, step)
);
INSERT INTO steps_by_num (saga_num, step, state, tx_hash, updated_ms)
SELECT s.num, t.step, t.state, t.tx_hash, t.updated_ms
FROM steps t JOIN sagas s ON s.id = t.saga_id;
DROP TABLE steps;
ALTER TABLE steps_by_num RENAME TO steps;
