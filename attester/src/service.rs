//! The attester: a key, the chains it follows (through its own RPC endpoints), the settlers it
//! trusts on each, and its store of decisions.

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::AdapterError;
use baton_adapters::attestation::{Delivery, OriginSettlerAt, signer_of};
use baton_adapters::port::{ChainAdapter, EscrowStatus, Evidence};
use baton_planner::{ChainId, OrderId};
use tracing::warn;

use crate::rules::{self, Checked, Refused};
use crate::store::{Decision, Store, StoreError};
use crate::wire::{Answer, Attestation, CancelRequest, Claim, FillRequest, Pending, Refusal};

/// One chain as the attester sees it.
#[derive(Clone)]
pub struct AttesterChain {
    /// Reads the chain through the attester's own endpoints (it never sends a transaction). Its
    /// settlers ([`ChainAdapter::settlers`]) are a pair the attester trusts there: an order must
    /// name the origin settler of a trusted pair, and only trusted destination settlers'
    /// `Filled` events count (each adapter's evidence holds its own settler's only).
    pub adapter: Arc<dyn ChainAdapter>,
    /// The other settler pairs it trusts on the chain, each read through an adapter of its own:
    /// during a settler upgrade, the new pair beside the old one that still serves the orders
    /// opened on it until they end.
    pub also: Vec<Arc<dyn ChainAdapter>>,
    /// How deep a block must be (1: the head) before the attester takes it as final.
    pub confirmations: u64,
}

impl AttesterChain {
    /// The chain read through `adapter`, trusting its settlers alone, final at `confirmations`.
    pub fn new(adapter: Arc<dyn ChainAdapter>, confirmations: u64) -> Self {
        Self {
            adapter,
            also: Vec::new(),
            confirmations,
        }
    }

    /// The settler pairs it trusts on the chain.
    pub fn trusted(&self) -> Vec<baton_adapters::abi::Settlers> {
        self.pairs().filter_map(|p| p.settlers()).collect()
    }

    /// Each trusted settler pair's adapter.
    fn pairs(&self) -> impl Iterator<Item = &Arc<dyn ChainAdapter>> {
        std::iter::once(&self.adapter).chain(&self.also)
    }

    /// The adapter of the trusted pair whose origin settler is `settler`.
    fn origin_settler(&self, settler: Address) -> Result<&Arc<dyn ChainAdapter>, Refused> {
        let chain = self.adapter.chain_id().0;
        if self.pairs().all(|p| p.settlers().is_none()) {
            return Err((
                Refusal::UnknownSettler,
                format!("this attester knows no settlers on chain {chain}"),
            ));
        }
        self.pairs()
            .find(|p| p.settlers().is_some_and(|s| s.origin == settler))
            .ok_or_else(|| {
                (
                    Refusal::UnknownSettler,
                    format!(
                        "the order names origin settler {settler}, not one this attester trusts \
                         on chain {chain}"
                    ),
                )
            })
    }

    /// Each trusted destination settler with its events about `order`.
    async fn evidence(&self, order: OrderId) -> Result<Vec<(Address, Evidence)>, AttesterError> {
        let mut out = Vec::new();
        for pair in self.pairs() {
            if let Some(settlers) = pair.settlers() {
                out.push((settlers.destination, pair.evidence(order).await?));
            }
        }
        Ok(out)
    }
}

/// Why the attester could not answer (HTTP 503): a chain or its store failed.
#[derive(Debug, thiserror::Error)]
pub enum AttesterError {
    /// Reading a chain failed.
    #[error(transparent)]
    Chain(#[from] AdapterError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(String),
}

/// An attester.
pub struct Attester {
    key: PrivateKeySigner,
    chains: HashMap<ChainId, AttesterChain>,
    store: Store,
}

fn refused((reason, detail): Refused) -> Answer {
    Answer::Refused { reason, detail }
}

fn pending(reason: Pending, detail: impl Into<String>) -> Answer {
    Answer::Pending {
        reason,
        detail: detail.into(),
    }
}

/// Returns early with the answer when a check refuses.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(refused(r)),
        }
    };
}

impl Attester {
    /// An attester signing with `key`, following `chains`, deciding into `store`.
    pub fn new(key: PrivateKeySigner, chains: Vec<AttesterChain>, store: Store) -> Self {
        let chains = chains
            .into_iter()
            .map(|c| (c.adapter.chain_id(), c))
            .collect();
        Self { key, chains, store }
    }

    /// [`Attester::new`] with an in-memory store: decisions last as long as the value (tests,
    /// benchmarks, replay trials).
    pub async fn in_memory(
        key: PrivateKeySigner,
        chains: Vec<AttesterChain>,
    ) -> Result<Self, StoreError> {
        Ok(Self::new(
            key,
            chains,
            Store::open("sqlite::memory:").await?,
        ))
    }

    /// The attester's address (a member of the settlers' attester sets).
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The chains it follows.
    pub fn chains(&self) -> impl Iterator<Item = (&ChainId, &AttesterChain)> {
        self.chains.iter()
    }

    /// How many decisions it has recorded.
    pub async fn decisions(&self) -> Result<u64, AttesterError> {
        Ok(self.store.count().await?)
    }

    fn chain(&self, id: ChainId) -> Result<&AttesterChain, Refused> {
        self.chains.get(&id).ok_or_else(|| {
            (
                Refusal::UnknownChain,
                format!("this attester does not follow chain {}", id.0),
            )
        })
    }

    /// On the order's origin chain, the adapter of the trusted pair whose origin settler it
    /// names.
    fn origin(&self, c: &Checked) -> Result<&Arc<dyn ChainAdapter>, Refused> {
        self.chain(c.chain())?
            .origin_settler(c.order.order().originSettler)
    }

    fn attestation(&self, id: OrderId, d: Decision) -> Answer {
        Answer::Signed(Attestation {
            order_id: id,
            claim: d.claim,
            signer: self.address(),
            signature: d.signature,
        })
    }

    fn sign(&self, digest: B256) -> Result<Bytes, AttesterError> {
        let sig = baton_adapters::abi::sign_hash(&self.key, digest)
            .map_err(|e| AttesterError::Signing(e.to_string()))?;
        Ok(Bytes::from(sig.as_bytes().to_vec()))
    }

    /// Records `claim` (signing `digest`) unless a decision stands; returns the one that stands.
    async fn decide(
        &self,
        c: &Checked,
        claim: Claim,
        digest: B256,
    ) -> Result<Decision, AttesterError> {
        let id = c.order.id();
        let mine = Decision {
            claim,
            signature: self.sign(digest)?,
        };
        let stands = self.store.decide(c.chain(), id, &mine).await?;
        if stands.claim == mine.claim {
            tracing::info!(order = %id.0, claim = ?stands.claim, "attested");
            metrics::counter!("baton_attester_signed_total", "kind" => kind(&stands.claim))
                .increment(1);
        } else {
            warn!(order = %id.0, "a decision came first: {:?}", stands.claim);
        }
        Ok(stands)
    }

    /// Answers a fill request (see [`crate`]'s rules).
    pub async fn fill(&self, req: &FillRequest) -> Result<Answer, AttesterError> {
        let c = check!(Checked::new(&req.order, req.filled_as.as_ref()));
        let origin = check!(self.origin(&c));
        let id = c.order.id();
        // While the escrow is open (the usual case), the decision below is one statement that
        // also returns a decision made before; once it is closed, that decision is the answer.
        if let Some(not_open) = escrow_not_open(origin.as_ref(), id).await? {
            return Ok(match self.store.get(c.chain(), id).await? {
                Some(d) => self.fill_answer(id, d, req.filler),
                None => not_open,
            });
        }
        // Each destination's trusted settlers with their events about the order, and its head,
        // read once.
        let mut seen: HashMap<ChainId, (Vec<(Address, Evidence)>, u64)> = HashMap::new();
        let mut deliveries: Vec<Delivery> = Vec::new();
        let mut shallow = None;
        for (i, output) in c.data.outputs.iter().enumerate() {
            let index = i as u32;
            let chain = check!(rules::output_chain(output));
            let dest = check!(self.chain(chain));
            let (evidence, head) = match seen.entry(chain) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert((
                    dest.evidence(c.filled_as).await?,
                    dest.adapter.head().await?.number,
                )),
            };
            if evidence.is_empty() {
                return Ok(refused((
                    Refusal::UnknownSettler,
                    format!("this attester knows no settlers on chain {}", chain.0),
                )));
            }
            let found = evidence.iter().find_map(|(settler, e)| {
                e.fills
                    .iter()
                    .find(|f| f.output_index == index)
                    .map(|f| (*settler, f))
            });
            let Some((settler, fill)) = found else {
                return Ok(pending(
                    Pending::NotFilled,
                    format!("output {index} has no fill on chain {}", chain.0),
                ));
            };
            deliveries.push(check!(rules::delivery(
                &c.data, index, settler, fill, req.filler
            )));
            if !rules::is_final(*head, fill.at.block.number, dest.confirmations) {
                shallow = Some(format!(
                    "output {index}'s fill is in block {} of chain {}, {} confirmations needed",
                    fill.at.block.number, chain.0, dest.confirmations
                ));
            }
        }
        if let Some(detail) = shallow {
            return Ok(pending(Pending::NotFinal, detail));
        }
        let digest = OriginSettlerAt::of(&c.order).fill_hash(id, req.filler, &deliveries);
        let claim = Claim::Fill {
            filler: req.filler,
            deliveries,
        };
        let stands = self.decide(&c, claim, digest).await?;
        Ok(self.fill_answer(id, stands, req.filler))
    }

    /// The answer to a fill request by `filler` when `decided` stands.
    fn fill_answer(&self, id: OrderId, decided: Decision, filler: Address) -> Answer {
        match &decided.claim {
            Claim::Fill { filler: f, .. } if *f == filler => self.attestation(id, decided),
            Claim::Fill { filler: f, .. } => refused((
                Refusal::Mismatch,
                format!("this attester attested the order as filled by {f}"),
            )),
            Claim::Cancel => refused(conflict(&decided.claim)),
        }
    }

    /// Answers a cancel request (see [`crate`]'s rules).
    pub async fn cancel(&self, req: &CancelRequest) -> Result<Answer, AttesterError> {
        let c = check!(Checked::new(&req.order, req.filled_as.as_ref()));
        let pair = check!(self.origin(&c));
        let id = c.order.id();
        if let Some(d) = self.store.get(c.chain(), id).await? {
            return Ok(match d.claim {
                Claim::Cancel => self.attestation(id, d),
                _ => refused(conflict(&d.claim)),
            });
        }
        if let Some(not_open) = escrow_not_open(pair.as_ref(), id).await? {
            return Ok(not_open);
        }
        let destinations = check!(c.destinations());
        for &chain in &destinations {
            let dest = check!(self.chain(chain));
            let mut ids = vec![c.filled_as];
            if c.filled_as != id {
                ids.push(id);
            }
            for order in ids {
                // A fill by any settler it trusts there rules the cancel out.
                for (_, evidence) in dest.evidence(order).await? {
                    if let Some(fill) = evidence.fills.first() {
                        return Ok(refused((
                            Refusal::Conflict,
                            format!(
                                "output {} of the order was filled on chain {} (tx {})",
                                fill.output_index, chain.0, fill.at.tx
                            ),
                        )));
                    }
                }
            }
        }
        if let Some(early) = &req.early {
            let asked = OriginSettlerAt::of(&c.order).cancel_request_hash(id);
            let opener = pair.opener(id).await?;
            if opener.is_none() || signer_of(asked, early) != opener {
                return Ok(refused((
                    Refusal::NotOpener,
                    "an early cancel must be signed (CancelRequest) by the order's opener".into(),
                )));
            }
        } else {
            let deadline = c.order.order().fillDeadline;
            for &chain in &destinations {
                let dest = check!(self.chain(chain));
                let head = dest.adapter.head().await?.number;
                let last_final = (head + 1).saturating_sub(dest.confirmations.max(1));
                let block = dest.adapter.block(last_final).await?;
                if !rules::deadline_passed(deadline, block.timestamp) {
                    return Ok(pending(
                        Pending::DeadlineNotPassed,
                        format!(
                            "chain {}'s last final block (at {}) is not past the fill deadline {deadline}",
                            chain.0, block.timestamp
                        ),
                    ));
                }
            }
        }
        let digest = OriginSettlerAt::of(&c.order).cancel_hash(id);
        let stands = self.decide(&c, Claim::Cancel, digest).await?;
        Ok(match stands.claim {
            Claim::Cancel => self.attestation(id, stands),
            _ => refused(conflict(&stands.claim)),
        })
    }
}

/// The answer when `order`'s escrow is not open on the origin settler `origin` reads (not yet,
/// or no longer).
async fn escrow_not_open(
    origin: &dyn ChainAdapter,
    order: OrderId,
) -> Result<Option<Answer>, AttesterError> {
    Ok(match origin.escrow(order).await? {
        EscrowStatus::None => Some(pending(
            Pending::NotOpened,
            "the order is not open on its origin settler",
        )),
        EscrowStatus::Settled | EscrowStatus::Refunded => Some(refused((
            Refusal::Closed,
            "the order's escrow is closed".into(),
        ))),
        EscrowStatus::Opened => None,
    })
}

fn kind(claim: &Claim) -> &'static str {
    match claim {
        Claim::Fill { .. } => "fill",
        Claim::Cancel => "cancel",
    }
}

fn conflict(stands: &Claim) -> Refused {
    (
        Refusal::Conflict,
        match stands {
            Claim::Fill { filler, .. } => {
                format!(
                    "this attester attested the order as filled by {filler}; it never cancels it"
                )
            }
            Claim::Cancel => {
                "this attester attested the order's cancel; it never attests a fill of it".into()
            }
        },
    )
}
