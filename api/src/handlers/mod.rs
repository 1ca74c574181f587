//! The route handlers, one module per group of endpoints; each takes its request DTO from
//! [`crate::dto`], checks the caller's role, and answers with a DTO or an [`crate::ApiError`].

pub(crate) mod config;
pub(crate) mod console;
pub(crate) mod intents;
pub(crate) mod operator;
pub(crate) mod quote;
pub(crate) mod replay;
pub(crate) mod system;
pub(crate) mod webhooks;
