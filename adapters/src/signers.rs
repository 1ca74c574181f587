//! Signers known without recovering them: a process-wide memo of ECDSA public-key recovery.
//!
//! Recovering the signer of a signature costs two scalar multiplications on secp256k1, the most
//! expensive thing a saga's checks do. The answer is a pure function of the digest and the
//! signature, so it is remembered, exactly, keyed by both:
//! - [`recover`] answers from the memo, or recovers and remembers the answer;
//! - [`remember`] records what a signer in this process knows when it signs (`abi::sign_hash`
//!   records every signature it makes: its key's address is what recovery would give, by
//!   ECDSA's correctness).
//!
//! Who uses it: the engine's check of a user's order signatures (the API checked the same
//! signatures moments before), and the sim chain, which stands for nodes that run elsewhere in
//! production: its node recovers each transaction's sender and its settler the user's and the
//! attester's signatures, work that would not be the coordinator's. A signature nobody in the
//! process made or checked — forged, altered, or a user's from a wallet — is recovered for real.
//!
//! The memo is bounded: two generations of [`GENERATION`] entries; when the young one fills, the
//! old one is dropped. A forgotten answer is recovered again.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use alloy::primitives::{Address, B256, Signature, SignatureError};

/// Entries per generation.
pub const GENERATION: usize = 16_384;

type Key = (B256, Signature);

#[derive(Default)]
struct Memo {
    young: HashMap<Key, Address>,
    old: HashMap<Key, Address>,
}

impl Memo {
    fn get(&self, key: &Key) -> Option<Address> {
        self.young.get(key).or_else(|| self.old.get(key)).copied()
    }

    fn insert(&mut self, key: Key, signer: Address) {
        if self.young.len() >= GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, signer);
    }
}

static MEMO: LazyLock<Mutex<Memo>> = LazyLock::new(Mutex::default);

fn memo() -> MutexGuard<'static, Memo> {
    // The memo holds no invariant a panic could break half-way: use it as it is.
    MEMO.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records that `signature` of `digest` was made by `signer` (the caller signed it, or recovered
/// it).
pub fn remember(digest: B256, signature: Signature, signer: Address) {
    memo().insert((digest, signature), signer);
}

/// The address whose key made `signature` of `digest`: from the memo, else recovered (and
/// remembered). The same answer as `signature.recover_address_from_prehash(&digest)`.
pub fn recover(digest: B256, signature: Signature) -> Result<Address, SignatureError> {
    let key = (digest, signature);
    if let Some(signer) = memo().get(&key) {
        return Ok(signer);
    }
    // Outside the lock: concurrent recoveries of other signatures go on in parallel.
    let signer = signature.recover_address_from_prehash(&digest)?;
    remember(digest, signature, signer);
    Ok(signer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use alloy::primitives::keccak256;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;

    #[test]
    fn answers_as_recovery_does() {
        let signer = PrivateKeySigner::random();
        let digest = keccak256(b"answers_as_recovery_does");
        let signature = signer.sign_hash_sync(&digest).unwrap();
        // Not remembered by anyone: recovered for real, then from the memo, the same both times.
        assert_eq!(recover(digest, signature).unwrap(), signer.address());
        assert_eq!(recover(digest, signature).unwrap(), signer.address());
        // Another digest with the same signature is another key: recovered, and not the signer.
        let other = keccak256(b"another message");
        assert_ne!(recover(other, signature).ok(), Some(signer.address()));
    }

    #[test]
    fn a_generation_is_dropped_when_the_next_fills() {
        let mut m = Memo::default();
        let sig = Signature::new(
            alloy::primitives::U256::from(1),
            alloy::primitives::U256::from(2),
            false,
        );
        let key = |i: usize| (B256::from(alloy::primitives::U256::from(i)), sig);
        for i in 0..2 * GENERATION + 1 {
            m.insert(key(i), Address::with_last_byte(1));
        }
        // The first generation is gone, the second (now old) and the newest are kept.
        assert_eq!(m.get(&key(0)), None);
        assert_eq!(m.get(&key(GENERATION)), Some(Address::with_last_byte(1)));
        assert_eq!(
            m.get(&key(2 * GENERATION)),
            Some(Address::with_last_byte(1))
        );
    }
}
