//! The adapters' error type.

/// An adapters result.
pub type Result<T, E = AdapterError> = std::result::Result<T, E>;

/// What went wrong reaching a chain.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The anvil binary is not installed where baton looks.
    #[error(
        "anvil was not found ($BATON_ANVIL, PATH, node_modules/@foundry-rs/anvil-linux-amd64): run `npm ci` \
         in the baton repository to install the pinned anvil"
    )]
    AnvilNotFound,
    /// An anvil node did not start.
    #[error("anvil did not start: {0}")]
    AnvilStart(String),
    /// The node refused a transaction or an op (nonce already used, fee too low, bad signature,
    /// unknown contract): sending it again will not help.
    #[error("{what} was refused: {reason}")]
    Rejected {
        /// What was being done.
        what: String,
        /// The node's reason.
        reason: String,
    },
    /// The adapter cannot do this op on its chain.
    #[error("{0} is not supported by this adapter")]
    Unsupported(String),
    /// A call failed on the way (transport, node error), after the retries the adapter allows.
    #[error("{what}: {detail}")]
    Chain {
        /// What was being done.
        what: String,
        /// The error from the node or the transport.
        detail: String,
    },
}

impl AdapterError {
    /// Wraps a node or transport error with what was being done.
    pub fn chain(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Chain {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// The node refused what was sent.
    pub fn rejected(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Rejected {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
