//! # baton-api
//!
//! Owns the REST API v1 (axum): quotes, signed-order intake, status and SSE streams, operator
//! endpoints, API keys with roles, rate limits, metrics and the OpenAPI document. Request and
//! response types live here and convert into the planner's and engine's domain types at the edge.
//!
//! Depends on the engine. **Status:** empty so far; the REST API issue fills it.
//!
//! ## Feature flags
//! None yet.

pub use baton_engine as engine;
