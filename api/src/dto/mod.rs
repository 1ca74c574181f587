//! The API's request and response types (DTOs): what goes over the wire, with its OpenAPI schema,
//! converted from and to the domain's types at the boundary (`into_spec`, `From<engine type>`).
//! Handlers take and answer these; the engine's and the planner's types never reach the wire
//! directly, so they can change without changing the HTTP contract.

pub mod intent;
pub mod operator;
pub mod quote;
pub mod saga;
pub mod webhook;
