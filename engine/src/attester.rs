//! Attestations from a quorum of independent attesters: the engine asks every configured attester
//! at once and stops listening as soon as the settler's threshold of its set agree, so attesters
//! that are down or slow do not hold a settlement up once enough have answered.
//!
//! Nothing an attester says is taken on its word: a signature counts only when it recovers, over
//! the digest of the claim it comes with, to a member of the origin settler's set (read from the
//! chain), and only signatures over one and the same claim make a quorum.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, Bytes};
use baton_adapters::attestation::{AttesterSet, Delivery, OriginSettlerAt, signer_of};
use baton_attester::client::Attest;
use baton_attester::wire::{Answer, CancelRequest, Claim, FillRequest};
use baton_planner::OrderId;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

/// What asking the attesters gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collected {
    /// A quorum: the claim's deliveries (none for a cancel) and the signatures, signer ascending.
    Quorum {
        /// What the attesters vouch was delivered (empty for a cancel).
        deliveries: Vec<Delivery>,
        /// The settler's threshold of members' signatures.
        signatures: Vec<Bytes>,
    },
    /// Not yet: what each attester said, for the saga's status.
    Waiting(String),
    /// Never: so many attesters refused that the rest cannot make a quorum.
    Refused(String),
}

/// The attesters the engine asks.
#[derive(Clone)]
pub struct Attesters {
    members: Vec<Arc<dyn Attest>>,
    timeout: Duration,
}

impl Attesters {
    /// Asks `members`, giving each request `timeout`.
    pub fn new(members: Vec<Arc<dyn Attest>>, timeout: Duration) -> Self {
        Self { members, timeout }
    }

    /// How many attesters are configured.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Collects a quorum of `set` for the fill of `req.order`.
    pub async fn fill(
        &self,
        set: &AttesterSet,
        at: OriginSettlerAt,
        order: OrderId,
        req: &FillRequest,
    ) -> Collected {
        let digest = |claim: &Claim| match claim {
            Claim::Fill { filler, deliveries } if *filler == req.filler => {
                Some(at.fill_hash(order, *filler, deliveries))
            }
            _ => None,
        };
        self.collect(set, order, |a| a.fill(req), digest).await
    }

    /// Collects a quorum of `set` for the cancel of `req.order`.
    pub async fn cancel(
        &self,
        set: &AttesterSet,
        at: OriginSettlerAt,
        order: OrderId,
        req: &CancelRequest,
    ) -> Collected {
        let digest = |claim: &Claim| matches!(claim, Claim::Cancel).then(|| at.cancel_hash(order));
        self.collect(set, order, |a| a.cancel(req), digest).await
    }

    async fn collect<'a>(
        &'a self,
        set: &AttesterSet,
        order: OrderId,
        ask: impl Fn(
            &'a dyn Attest,
        ) -> BoxFuture<'a, Result<Answer, baton_attester::client::Unreachable>>,
        digest: impl Fn(&Claim) -> Option<B256>,
    ) -> Collected {
        if set.threshold == 0 || set.members.is_empty() {
            return Collected::Waiting("the origin settler has no attester set".into());
        }
        let mut asked: FuturesUnordered<_> = self
            .members
            .iter()
            .map(|a| {
                let call = tokio::time::timeout(self.timeout, ask(a.as_ref()));
                async move { (a.name(), call.await) }
            })
            .collect();
        // Signatures by claim: only signatures over one claim make a quorum.
        let mut agreeing: Vec<(Claim, Vec<Bytes>)> = Vec::new();
        let mut said: Vec<String> = Vec::new();
        let mut refused = 0usize;
        while let Some((name, answer)) = asked.next().await {
            let answer = match answer {
                Err(_) => {
                    said.push(format!("{name}: no answer in {:?}", self.timeout));
                    continue;
                }
                Ok(Err(e)) => {
                    said.push(format!("{name}: unreachable ({})", e.detail));
                    continue;
                }
                Ok(Ok(a)) => a,
            };
            match answer {
                Answer::Signed(a) => {
                    let valid = a.order_id == order
                        && digest(&a.claim).is_some_and(|d| {
                            signer_of(d, &a.signature).is_some_and(|s| set.members.contains(&s))
                        });
                    if !valid {
                        said.push(format!(
                            "{name}: a signature that is not a member's over the claim asked for"
                        ));
                        continue;
                    }
                    let at = match agreeing.iter().position(|(c, _)| *c == a.claim) {
                        Some(i) => i,
                        None => {
                            agreeing.push((a.claim.clone(), Vec::new()));
                            agreeing.len() - 1
                        }
                    };
                    agreeing[at].1.push(a.signature);
                    let (claim, sigs) = &agreeing[at];
                    let Some(d) = digest(claim) else { continue };
                    if let Some(signatures) = set.quorum(d, sigs.iter().cloned()) {
                        let deliveries = match claim {
                            Claim::Fill { deliveries, .. } => deliveries.clone(),
                            Claim::Cancel => Vec::new(),
                        };
                        return Collected::Quorum {
                            deliveries,
                            signatures,
                        };
                    }
                    said.push(format!("{name}: signed"));
                }
                Answer::Pending { reason, detail } => {
                    said.push(format!("{name}: {} ({detail})", reason.code()));
                }
                Answer::Refused { reason, detail } => {
                    refused += 1;
                    said.push(format!("{name}: refused, {} ({detail})", reason.code()));
                }
            }
        }
        let summary = format!(
            "{} of {} attestations: {}",
            agreeing.iter().map(|(_, s)| s.len()).max().unwrap_or(0),
            set.threshold,
            said.join("; ")
        );
        if self.members.len().saturating_sub(refused) < set.threshold {
            Collected::Refused(summary)
        } else {
            Collected::Waiting(summary)
        }
    }
}
