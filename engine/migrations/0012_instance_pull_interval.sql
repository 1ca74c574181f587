-- Coordinated changes, continued: how often each instance pulls the versions (and declares
-- itself), so one that pulls rarely is judged alive over its own interval and shown lagging while
-- it runs a version no longer active. Same conventions as 0001.
ALTER TABLE config_instances ADD COLUMN pull_every_ms BIGINT NOT NULL DEFAULT 1000;
