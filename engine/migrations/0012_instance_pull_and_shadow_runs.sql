-- Coordinated changes, continued: how often each instance pulls the versions (and declares
-- itself), so one that pulls rarely is judged alive over its own interval and shown lagging while
-- it runs a version no longer active. Same conventions as 0001.
ALTER TABLE config_instances ADD COLUMN pull_every_ms BIGINT NOT NULL DEFAULT 1000;

-- A proposed version's shadow run: the last finished sagas re-run on anvil forks under its bundle,
-- by one instance (the one that claimed it: `by_instance` from `started_ms`; a claim older than a
-- proposal, or unfinished for long, is taken over). `report` is its JSON; a version whose run found
-- regressions is approved only once an operator overrides them, with a reason.
CREATE TABLE config_shadows (
    version         TEXT PRIMARY KEY,
    by_instance     TEXT NOT NULL,
    started_ms      BIGINT NOT NULL,
    finished_ms     BIGINT,
    sagas           BIGINT NOT NULL DEFAULT 0,
    regressions     BIGINT NOT NULL DEFAULT 0,
    report          TEXT,
    override_by     TEXT,
    override_reason TEXT,
    override_ms     BIGINT
);
