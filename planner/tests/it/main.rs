//! The planner's integration tests, in one binary to keep link time down.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod eip712;
mod plan_rules;
mod props;
mod scenarios;
mod support;
