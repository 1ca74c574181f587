//! A local nonce counter: nonces are handed out without asking the chain each time, so many
//! transactions can be prepared (and in flight) at once.

use std::sync::Mutex;

use crate::error::{AdapterError, Result};

/// The next nonce to hand out, once known.
#[derive(Debug, Default)]
pub struct NonceCounter(Mutex<Option<u64>>);

impl NonceCounter {
    /// The next nonce, if one was handed out before (otherwise ask the chain for its pending one).
    pub fn known(&self) -> Result<Option<u64>> {
        Ok(*self.lock()?)
    }

    /// Hands out the larger of the local next nonce and the chain's pending `pending`: the chain
    /// may know of transactions sent by someone else with this key, and another `take` may have
    /// run meanwhile.
    pub fn take(&self, pending: u64) -> Result<u64> {
        let mut next = self.lock()?;
        let nonce = next.map_or(pending, |n| n.max(pending));
        *next = Some(nonce + 1);
        Ok(nonce)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<u64>>> {
        self.0
            .lock()
            .map_err(|_| AdapterError::chain("nonce", "lock poisoned"))
    }
}
