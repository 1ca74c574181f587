//! A local nonce counter: nonces are handed out without asking the chain each time, so many
//! transactions can be prepared (and in flight) at once. A nonce whose transaction the node refused
//! outright can be given back, so it does not leave a gap that would hold every later one.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::error::{AdapterError, Result};

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
    pub fn take(&self, pending: u64) -> Result<u64> {
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
    pub fn release(&self, nonce: u64) -> Result<()> {
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
        assert_eq!(c.take(5).unwrap(), 5);
        assert_eq!(c.take(5).unwrap(), 6);
        c.release(5).unwrap();
        assert_eq!(c.take(5).unwrap(), 5, "no gap");
        assert_eq!(c.take(5).unwrap(), 7);
        c.release(6).unwrap();
        assert_eq!(c.take(7).unwrap(), 8, "6 was used on chain meanwhile");
        c.release(42).unwrap();
        assert_eq!(c.take(0).unwrap(), 9, "never handed out: not given back");
    }
}
