//! # baton-attester
//!
//! An attester: its own process (`baton attester serve`), with its own key, its own RPC endpoints
//! and its own state, that signs what the origin settlers need to release an escrow — and nothing
//! else. A quorum of independent attesters (the settler's threshold of its set) is needed to settle
//! or cancel an order, so neither the solver nor any one attester can move escrowed funds.
//!
//! It signs `Fill(orderId, filler, deliveries)` only when every output of the order, as the user
//! signed it, was delivered by the destination settler it trusts on that chain — the token, at
//! least the amount, the recipient and the calls the order names — by that filler, in a block as
//! deep as its confirmation rule asks. It signs `Cancel(orderId)` only for an order with no fill
//! whose fill deadline has passed on every destination (so none can come), or earlier when the
//! order's opener asks and it has recorded that it will never attest a fill for it. It records each
//! decision before it signs, and never signs both for one order.
//!
//! ## Layout
//! - [`wire`]: requests and answers, as the HTTP API and the engine's client exchange them.
//! - [`rules`]: what makes a fill or a cancel attestable, from the chains' answers.
//! - [`store`]: the decisions (SQLite): one per order, fill or cancel, with its signature.
//! - [`service`]: the attester itself: a key, chains, a store.
//! - [`http`]: the HTTP API (`POST /v1/fills`, `POST /v1/cancels`, health, metrics).
//! - [`client`]: the [`client::Attest`] trait the engine calls, for an attester in this process
//!   or one reached over HTTP.
//! - [`devnet`]: an EVM chain as an attester reads it; the devnet's attesters (dev accounts 7,
//!   8, 9) in process.
//!
//! Depends on the planner (orders) and the adapters (chains, settler types).
//!
//! ## Feature flags
//! None.

pub mod client;
pub mod devnet;
pub mod http;
pub mod rules;
pub mod service;
pub mod store;
pub mod wire;

pub use service::{Attester, AttesterChain};
