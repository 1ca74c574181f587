//! Attestations from a quorum of independent attesters. The engine asks as many attesters as the
//! settler's threshold, each order starting at another one so the load spreads; it asks the next
//! at once when one cannot answer, has not signed yet, will not sign, or signs something it cannot
//! count, and all the others when the first are slow ([`HEDGE_AFTER`]); it stops listening as
//! soon as the threshold agree. So attesters that are down or slow do not hold a settlement up
//! once enough have answered, and in the usual case each settlement costs only the threshold's
//! work.
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
    hedge: Duration,
}

/// How long the first attesters asked have before the others are asked too.
pub const HEDGE_AFTER: Duration = Duration::from_millis(250);

impl Attesters {
    /// Asks `members`, giving each request `timeout`.
    pub fn new(members: Vec<Arc<dyn Attest>>, timeout: Duration) -> Self {
        Self {
            members,
            timeout,
            hedge: HEDGE_AFTER.min(timeout),
        }
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
        if set.threshold == 0 || set.members.is_empty() || self.members.is_empty() {
            return Collected::Waiting("the origin settler has no attester set".into());
        }
        // Each order starts at its own attester, so the first asked spread over all of them.
        let n = self.members.len();
        let first = usize::from(order.0[31]) % n;
        let mut queue = (0..n).map(|i| &self.members[(first + i) % n]);
        let launch = |a: &'a Arc<dyn Attest>| {
            let call = tokio::time::timeout(self.timeout, ask(a.as_ref()));
            async move { (a.name(), call.await) }
        };
        let mut asked: FuturesUnordered<_> =
            queue.by_ref().take(set.threshold).map(launch).collect();
        let hedge = tokio::time::sleep(self.hedge);
        tokio::pin!(hedge);
        // Signatures by claim: only signatures over one claim make a quorum.
        let mut agreeing: Vec<(Claim, B256, Vec<Bytes>)> = Vec::new();
        let mut said: Vec<String> = Vec::new();
        let mut refused = 0usize;
        loop {
            let (name, answer) = tokio::select! {
                next = asked.next() => match next {
                    Some(answered) => answered,
                    None => match queue.next() {
                        Some(a) => {
                            asked.push(launch(a));
                            continue;
                        }
                        None => break,
                    },
                },
                () = &mut hedge, if queue.len() > 0 => {
                    // The first asked are slow: ask the rest too.
                    asked.extend(queue.by_ref().map(launch));
                    continue;
                }
            };
            // An attester that cannot answer, or will not sign: ask the next one now.
            let ask_another =
                |asked: &mut FuturesUnordered<_>,
                 queue: &mut dyn Iterator<Item = &'a Arc<dyn Attest>>| {
                    if let Some(a) = queue.next() {
                        asked.push(launch(a));
                    }
                };
            let answer = match answer {
                Err(_) => {
                    said.push(format!("{name}: no answer in {:?}", self.timeout));
                    ask_another(&mut asked, &mut queue);
                    continue;
                }
                Ok(Err(e)) => {
                    said.push(format!("{name}: unreachable ({})", e.detail));
                    ask_another(&mut asked, &mut queue);
                    continue;
                }
                Ok(Ok(a)) => a,
            };
            match answer {
                Answer::Signed(a) => {
                    // The claim's digest once per claim; the signature must be a member's over it.
                    let at = match agreeing.iter().position(|(c, _, _)| *c == a.claim) {
                        Some(i) => Some(i),
                        None => digest(&a.claim).map(|d| {
                            agreeing.push((a.claim.clone(), d, Vec::new()));
                            agreeing.len() - 1
                        }),
                    };
                    let counted = at.filter(|&i| {
                        a.order_id == order
                            && signer_of(agreeing[i].1, &a.signature)
                                .is_some_and(|s| set.members.contains(&s))
                    });
                    let Some(i) = counted else {
                        said.push(format!(
                            "{name}: a signature that is not a member's over the claim asked for"
                        ));
                        ask_another(&mut asked, &mut queue);
                        continue;
                    };
                    agreeing[i].2.push(a.signature);
                    let (claim, d, sigs) = &agreeing[i];
                    if let Some(signatures) = set.quorum(*d, sigs.iter().cloned()) {
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
                    if agreeing.len() > 1 {
                        // Attesters disagree on what happened: hear them all.
                        asked.extend(queue.by_ref().map(launch));
                    }
                }
                Answer::Pending { reason, detail } => {
                    // Not yet, by its view of the chains: another may see further.
                    said.push(format!("{name}: {} ({detail})", reason.code()));
                    ask_another(&mut asked, &mut queue);
                }
                Answer::Refused { reason, detail } => {
                    refused += 1;
                    said.push(format!("{name}: refused, {} ({detail})", reason.code()));
                    ask_another(&mut asked, &mut queue);
                }
            }
        }
        let summary = format!(
            "{} of {} attestations: {}",
            agreeing.iter().map(|(_, _, s)| s.len()).max().unwrap_or(0),
            set.threshold,
            said.join("; ")
        );
        if n.saturating_sub(refused) < set.threshold {
            Collected::Refused(summary)
        } else {
            Collected::Waiting(summary)
        }
    }
}
