//! The replay's error type.

use baton_engine::{EngineError, SagaId};
use baton_planner::ChainId;

/// A replay result.
pub type Result<T, E = ReplayError> = std::result::Result<T, E>;

/// Why a replay could not run. Everything but [`ReplayError::Engine`] is about reaching the chains
/// or starting the forks: the API answers those as a chain that is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the saga's log, or running the trial's engine, failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The saga has no transaction whose result the log records.
    #[error("replay: saga {0} has no transaction with a recorded result to replay")]
    NothingToReplay(SagaId),
    /// No RPC URL was given for a chain the saga acted on.
    #[error("replay: no RPC URL for chain {0} (the saga acted on it)")]
    NoRpc(ChainId),
    /// The RPC URL of a chain does not parse.
    #[error("replay: chain {chain}: RPC URL {url:?}: {detail}")]
    BadRpcUrl {
        /// The chain.
        chain: ChainId,
        /// The URL given.
        url: String,
        /// Why it does not parse.
        detail: String,
    },
    /// An anvil fork did not start.
    #[error(
        "replay: cannot fork chain {chain} at block {block}: {detail}; the RPC may have no state at \
         that block (not an archive node): try a later block"
    )]
    Fork {
        /// The chain.
        chain: ChainId,
        /// The block.
        block: u64,
        /// What anvil said.
        detail: String,
    },
    /// A call to a chain or a fork failed.
    #[error("replay: {method}: {detail}")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The transport's or the node's error.
        detail: String,
    },
    /// A trial has no venue (settlers, tokens, pools) for a chain the saga acted on.
    #[error("replay: no venue for chain {0}")]
    NoVenue(ChainId),
    /// A trial could not be set up on the forks (its attester, its store).
    #[error("replay: setting up the trial: {0}")]
    Trial(String),
}

impl ReplayError {
    /// A failed call of `method`.
    pub(crate) fn rpc(method: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Rpc {
            method,
            detail: detail.to_string(),
        }
    }

    /// Whether trying again later may succeed: a chain or fork could not be reached. A saga
    /// with nothing to replay, a missing RPC URL or venue, or a failure of the log will not
    /// change by waiting.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rpc { .. } | Self::Fork { .. } => true,
            Self::Engine(e) => e.is_retryable(),
            Self::NothingToReplay(_)
            | Self::NoRpc(_)
            | Self::BadRpcUrl { .. }
            | Self::NoVenue(_)
            | Self::Trial(_) => false,
        }
    }
}
