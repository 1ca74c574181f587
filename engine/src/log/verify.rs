//! Verification of the hash chains: each event's hash recomputed from its content and the
//! previous hash; the first altered, missing or truncated event named.

use alloy::primitives::B256;

use super::{SagaLog, event_hash, hex};
use crate::error::Result;
use crate::event::{SagaEvent, SagaId};
use crate::with_pool;

/// The first broken link [`SagaLog::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The saga.
    pub saga: SagaId,
    /// The first event that does not check (one past the last, for a truncated tail).
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

/// What [`SagaLog::verify`] checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Sagas checked.
    pub sagas: u64,
    /// Events checked.
    pub events: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

impl SagaLog {
    /// Checks the hash chain of `saga`, or of every saga, and reports the first broken link.
    pub async fn verify(&self, saga: Option<SagaId>) -> Result<Verification> {
        let sagas = match saga {
            Some(s) => vec![s],
            None => self.sagas().await?,
        };
        let mut out = Verification::default();
        for saga in sagas {
            out.sagas += 1;
            if let Some(broken) = self.verify_one(saga, &mut out.events).await? {
                out.broken = Some(broken);
                break;
            }
        }
        Ok(out)
    }

    async fn verify_one(&self, saga: SagaId, count: &mut u64) -> Result<Option<BrokenLink>> {
        let broken = |seq: u64, reason: String| Ok(Some(BrokenLink { saga, seq, reason }));
        let rows = self.rows(saga).await?;
        let mut prev = B256::ZERO;
        let mut expected = 1u64;
        for (seq, payload, stored_prev, stored_hash, at_ms) in rows {
            *count += 1;
            if u64::try_from(seq).ok() != Some(expected) {
                return broken(
                    expected,
                    format!("event {expected} is missing (found {seq})"),
                );
            }
            if stored_prev != hex(prev) {
                return broken(
                    expected,
                    "its previous hash is not the previous event's".into(),
                );
            }
            if serde_json::from_str::<SagaEvent>(&payload).is_err() {
                return broken(expected, "its payload is not an event".into());
            }
            let hash = event_hash(prev, saga, expected, at_ms, &payload);
            if stored_hash != hex(hash) {
                return broken(expected, "its hash does not match its content".into());
            }
            prev = hash;
            expected += 1;
        }
        let last: Option<String> = with_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT last_hash FROM sagas WHERE id = $1")
                .bind(hex(saga.0))
                .fetch_optional(pool)
                .await?
        });
        match last {
            Some(last) if last != hex(prev) => broken(
                expected,
                "events after the last stored one were removed (the saga's last hash differs)"
                    .into(),
            ),
            _ => Ok(None),
        }
    }
}
