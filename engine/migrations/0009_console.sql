-- What the operators' console filters and charts by, kept as columns so the list and the
-- outcome series are plain indexed queries (same conventions as 0001).

-- The kind of a saga's latest outcome (`fulfilled`, `refunded`, `failed`) and when it was
-- decided (unix milliseconds); NULL while undecided. The writer sets both in the commit of the
-- `decided` event.
ALTER TABLE sagas ADD COLUMN outcome_kind TEXT;
ALTER TABLE sagas ADD COLUMN decided_ms BIGINT;

-- Sagas decided before this migration: the kind from the stored outcome (its tag is the first
-- field serde writes), the time from the saga's last change (the closest the row holds).
UPDATE sagas SET outcome_kind = CASE
        WHEN outcome LIKE '{"outcome":"fulfilled"%' THEN 'fulfilled'
        WHEN outcome LIKE '{"outcome":"refunded"%' THEN 'refunded'
        ELSE 'failed' END,
    decided_ms = updated_ms
WHERE outcome IS NOT NULL;
CREATE INDEX sagas_by_decided ON sagas (decided_ms);
CREATE INDEX sagas_by_created ON sagas (created_ms);

-- An intent's route as the metrics name it: its origin chains, `>`, its destination chains, each
-- list ascending and joined by `+` (`31337>31338`). NULL for intents admitted before this
-- migration.
ALTER TABLE intents ADD COLUMN route TEXT;
