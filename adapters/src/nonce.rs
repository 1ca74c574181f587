//! Where an adapter's nonces come from: a [`NonceSource`]. The local one, [`NonceCounter`], hands
//! nonces out without asking the chain each time, so many transactions can be prepared (and in
//! flight) at once; a nonce whose transaction the node refused outright can be given back, so it
//! does not leave a gap that would hold every later one. Several processes signing with one key
//! share a source kept elsewhere (the engine keeps one in its database) instead.

use std::collections::BTreeSet;
use std::sync::Mutex;

use alloy::primitives::Address;
use baton_planner::ChainId;

use crate::error::{AdapterError, Result};
use crate::port::BoxFuture;

/// A source's answer to [`NonceSource::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Sign with this nonce: nobody else will be handed it.
    Nonce(u64),
    /// Ask the chain for the account's pending count and take again with it (the source cannot
    /// tell on its own which nonces the chain used).
    AskChain,
}

/// Hands out the nonces of a signer on a chain, so that no two transactions it signs share one
/// (unless one replaces the other, which reuses a nonce without taking it).
pub trait NonceSource: Send + Sync {
    /// The next nonce of `signer` on `chain`; `pending` is the chain's pending count when the
    /// caller read it (after an [`Taken::AskChain`]).
    fn take(
        &self,
        chain: ChainId,
        signer: Address,
        pending: Option<u64>,
    ) -> BoxFuture<'_, Result<Taken>>;

    /// Gives `nonce` back: its transaction never reached the chain (the node refused it).
    fn release(&self, chain: ChainId, signer: Address, nonce: u64) -> BoxFuture<'_, Result<()>>;

    /// Whether a nonce may have been abandoned (see [`NonceSource::abandoned`]), looked at without
    /// the chain's count, so that a caller with nothing to plug asks the chain nothing. `false`
    /// (the default) for a source whose nonces have no holder other than its own process.
    fn has_abandoned(&self, chain: ChainId, signer: Address) -> BoxFuture<'_, Result<bool>> {
        let _ = (chain, signer);
        Box::pin(std::future::ready(Ok(false)))
    }

    /// A nonce at or above `pending` that was handed out but whose holder let it go without
    /// writing its transaction down (it stopped): every later transaction waits for it, so the
    /// caller sends something harmless with it. `None` when there is none (the default).
    fn abandoned(
        &self,
        chain: ChainId,
        signer: Address,
        pending: u64,
    ) -> BoxFuture<'_, Result<Option<u64>>> {
        let _ = (chain, signer, pending);
        Box::pin(std::future::ready(Ok(None)))
    }
}

impl NonceSource for NonceCounter {
    fn take(&self, _: ChainId, _: Address, pending: Option<u64>) -> BoxFuture<'_, Result<Taken>> {
        let taken = (|| {
            Ok(match pending {
                Some(pending) => Taken::Nonce(self.take_at(pending)?),
                None => match self.known()? {
                    Some(next) if !self.has_free()? => Taken::Nonce(self.take_at(next)?),
                    _ => Taken::AskChain,
                },
            })
        })();
        Box::pin(std::future::ready(taken))
    }

    fn release(&self, _: ChainId, _: Address, nonce: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(std::future::ready(self.give_back(nonce)))
    }
}

#[derive(Debug, Default)]
struct Inner {
    next: Option<u64>,
    /// Given back, below `next`: handed out again first.
    free: BTreeSet<u64>,
}

/// The next nonce to hand out, once known.
#[derive(Debug, Default)]
pub struct NonceCounter(Mutex<Inner>);

impl NonceCounter {
    /// The next nonce, if one was handed out before (otherwise ask the chain for its pending one).
    pub fn known(&self) -> Result<Option<u64>> {
        Ok(self.lock()?.next)
    }

    /// Whether nonces were given back (then the chain's pending nonce must be asked, to skip any
    /// that was used meanwhile).
    pub fn has_free(&self) -> Result<bool> {
        Ok(!self.lock()?.free.is_empty())
    }

    /// Hands out the lowest nonce given back that the chain has not used (`pending` is the chain's
    /// pending nonce), else the larger of the local next nonce and `pending`: the chain may know of
    /// transactions sent by someone else with this key, and another `take` may have run meanwhile.
    pub fn take_at(&self, pending: u64) -> Result<u64> {
        let mut inner = self.lock()?;
        while let Some(n) = inner.free.pop_first() {
            if n >= pending {
                return Ok(n);
            }
        }
        let nonce = inner.next.map_or(pending, |n| n.max(pending));
        inner.next = Some(nonce + 1);
        Ok(nonce)
    }

    /// Gives `nonce` back: its transaction never reached the chain (the node refused it), so it is
    /// handed out again before any new one.
    pub fn give_back(&self, nonce: u64) -> Result<()> {
        let mut inner = self.lock()?;
        if inner.next.is_some_and(|n| nonce < n) {
            inner.free.insert(nonce);
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.0
            .lock()
            .map_err(|_| AdapterError::chain("nonce", "lock poisoned"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_released_nonce_is_handed_out_again_first_unless_the_chain_used_it() {
        let c = NonceCounter::default();
        assert_eq!(c.take_at(5).unwrap(), 5);
        assert_eq!(c.take_at(5).unwrap(), 6);
        c.give_back(5).unwrap();
        assert_eq!(c.take_at(5).unwrap(), 5, "no gap");
        assert_eq!(c.take_at(5).unwrap(), 7);
        c.give_back(6).unwrap();
        assert_eq!(c.take_at(7).unwrap(), 8, "6 was used on chain meanwhile");
        c.give_back(42).unwrap();
        assert_eq!(c.take_at(0).unwrap(), 9, "never handed out: not given back");
    }
}
