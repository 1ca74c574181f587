-- Intents are keyed by their saga's number, as events and steps are since 0003. Keyed by the id (a
-- hash), every admission wrote a random leaf page of that index: about four of the fifty pages a
-- commit wrote. The id stays, unindexed; the saga's row (indexed by id) leads to the number. An
-- intent is written in the commit that admits its saga, so none is without one. Same conventions
-- as 0001.

CREATE TABLE intents_by_num (
    saga_num    BIGINT PRIMARY KEY,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
INSERT INTO intents_by_num (saga_num, id, body, created_ms)
SELECT s.num, i.id, i.body, i.created_ms
FROM intents i JOIN sagas s ON s.id = i.id;
DROP TABLE intents;
ALTER TABLE intents_by_num RENAME TO intents;
