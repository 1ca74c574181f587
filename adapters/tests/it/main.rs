//! The adapters' integration tests (one binary): the contracts on real anvil nodes.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod settlers;
