-- Coordinated changes, continued: when a scheduled version activates, each version's approvals
-- (one per approver key, with its signature), and what each instance declares it runs. Same
-- conventions as 0001.

-- Set when a version is scheduled: unix milliseconds from which it is active, or the chain and
-- block from which it is.
ALTER TABLE config_versions ADD COLUMN activate_at_ms BIGINT;
ALTER TABLE config_versions ADD COLUMN activate_chain BIGINT;
ALTER TABLE config_versions ADD COLUMN activate_block BIGINT;

-- An approval: the approver key's address (checksummed hex), its EIP-191 signature over the
-- version's approval message, and the API key that sent it. One per approver and version.
CREATE TABLE config_approvals (
    version   TEXT NOT NULL,
    approver  TEXT NOT NULL,
    signature TEXT NOT NULL,
    by_name   TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    PRIMARY KEY (version, approver)
);

-- Each instance's declaration, renewed while it runs: the bundle it runs (a version's id, or the
-- hash of a bundle that is no version), the version it has staged to switch to (NULL: none), when
-- it started and when it last declared.
CREATE TABLE config_instances (
    instance   TEXT PRIMARY KEY,
    running    TEXT NOT NULL,
    staged     TEXT,
    started_ms BIGINT NOT NULL,
    seen_ms    BIGINT NOT NULL
);
