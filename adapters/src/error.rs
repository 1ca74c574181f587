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
        /// What kind of refusal, decided once where the node's answer is read.
        refusal: Refusal,
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

/// Why a node refused a transaction, as far as it matters to the sender: whether the
/// transaction's nonce stays taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The nonce was used by an included transaction (`nonce too low`).
    NonceUsed,
    /// A pending transaction holds the nonce with fees this one does not beat enough.
    Underpriced,
    /// The node has this very transaction already.
    AlreadyKnown,
    /// Anything else (a bad signature, too little gas, a fee cap above the balance, a gateway's
    /// refusal): the transaction will never land and its nonce is still free.
    Other,
}

impl Refusal {
    /// The kind of a node's refusal message. Nodes (geth, anvil, reth, hosted providers) answer
    /// a refused `eth_sendRawTransaction` with a generic JSON-RPC code (-32000, -32003) and a
    /// sentence, so the sentence is the only thing to go by; this is the one place that reads it.
    pub fn from_node_message(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("underpriced") {
            Self::Underpriced
        } else if m.contains("known") {
            Self::AlreadyKnown
        } else if m.contains("nonce") {
            Self::NonceUsed
        } else {
            Self::Other
        }
    }

    /// Whether the refused transaction's nonce is still taken (by an included or a pending
    /// transaction, or by this one): only when it is not may the sender hand the nonce out again.
    pub fn keeps_nonce(self) -> bool {
        !matches!(self, Self::Other)
    }
}

impl AdapterError {
    /// Whether doing the same again later may succeed: a transport failure or a node error
    /// answer that is not a refusal. A refusal, an unsupported op or a missing anvil will not
    /// change by waiting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Chain { .. })
    }

    /// Wraps a node or transport error with what was being done.
    pub fn chain(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Chain {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// The node refused what was sent, for no reason that keeps its nonce taken
    /// ([`Refusal::Other`]).
    pub fn rejected(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::refused(what, Refusal::Other, reason)
    }

    /// The node refused what was sent, as `refusal`.
    pub fn refused(
        what: impl Into<String>,
        refusal: Refusal,
        reason: impl std::fmt::Display,
    ) -> Self {
        Self::Rejected {
            what: what.into(),
            reason: reason.to_string(),
            refusal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    #[test]
    fn node_refusals_are_classified_once_by_what_they_mean_for_the_nonce() {
        for (message, kind) in [
            ("nonce too low", Refusal::NonceUsed),
            (
                "nonce too low: next nonce 7, tx nonce 5",
                Refusal::NonceUsed,
            ),
            ("replacement transaction underpriced", Refusal::Underpriced),
            ("already known", Refusal::AlreadyKnown),
            ("insufficient funds for gas * price + value", Refusal::Other),
            (
                "upstream connect error (the RPC's load balancer)",
                Refusal::Other,
            ),
        ] {
            assert_eq!(Refusal::from_node_message(message), kind, "{message}");
        }
        assert!(Refusal::NonceUsed.keeps_nonce());
        assert!(Refusal::Underpriced.keeps_nonce());
        assert!(Refusal::AlreadyKnown.keeps_nonce());
        assert!(!Refusal::Other.keeps_nonce());
    }
}
