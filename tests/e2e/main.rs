//! End-to-end tests across crates, driving the `baton` binary as a user would: what needs the real
//! server and real chains. The REST stories run on [`stack`] (two anvil chains and a `baton serve`
//! over them), one file per story; the API's client errors, roles, rate limits and idempotency are
//! tested in-process in `api/tests`.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod attesters;
mod audit;
mod bench;
mod changes;
mod cli;
mod console;
mod contract;
mod contracts;
mod devnet;
mod example;
mod follower;
mod fulfilled;
mod hostile;
mod instances;
mod refunded;
mod restart;
mod resumed;
mod stack;
mod webhooks;
