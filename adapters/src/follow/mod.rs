//! A follower per chain: reads each new block once (its header and receipts, or its logs) and
//! keeps a [`View`] of what baton asks about most, so that intake checks, snapshots and waiting
//! sagas do not call the node per request.
//!
//! [`Followed`] wraps a chain's adapter and is one itself: balances, allowances and pool reserves
//! are answered from the view as of the block it reflects (a key it does not follow yet costs one
//! read at that block, after which it is followed from the blocks' `Transfer`, `Approval` and `Sync`
//! events); the head, the clock and the fee come from the blocks it read; a transaction of the
//! adapter's account is found in the receipts of those blocks instead of by polling its receipt.
//! A reorg rolls the view back block by block to the common ancestor (deeper than the blocks kept:
//! the view starts again). A fill looked for is found among the settler events of the blocks it
//! read (the view's lack of it goes to the node); a user's used order nonces are listed once and
//! then kept from the origin settler's `NonceUsed` events. Everything else (signing, broadcasting,
//! the rest of the settler evidence) goes to the wrapped adapter.
//!
//! A value from the view may be a block or two older than the chain's: what depends on it (an
//! open pulling the user's tokens, a swap against reserves) is checked again by the chain itself.

mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use baton_planner::{ChainId, OrderId};

pub use view::{NotNext, View};

use crate::abi;
use crate::error::{AdapterError, Result};
use crate::port::{
    Backlog, BlockRef, BoxFuture, ChainAdapter, ChainBlock, Conditions, EscrowStatus, Evidence,
    FillEvidence, Inclusion, Reserves, RpcHealth, SignedTx, StateKey, StateValue, TxRequest,
    TxStatus, WantedFill, gas_with_margin,
};

/// Orders whose settler evidence is kept at most (then the memo starts again).
const MAX_KEPT_EVIDENCE: usize = 100_000;

/// A follower's knobs.
#[derive(Clone, Copy, Debug)]
pub struct FollowConfig {
    /// How often the head is asked for when the adapter has no feed of new heads.
    pub poll: Duration,
    /// Blocks kept to roll back through (and in which the account's transactions are found).
    pub keep_blocks: usize,
    /// Blocks a transaction may stay out of the view's blocks before its status is asked of the
    /// node (to learn that it was dropped); the wait before each next ask doubles, up to eight
    /// times this.
    pub quiet_blocks: u64,
    /// How long the view may go without a block read before its clock is no longer trusted (the
    /// node is asked instead, and its failure shows).
    pub stale_after: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            keep_blocks: 256,
            quiet_blocks: 3,
            stale_after: Duration::from_secs(10),
        }
    }
}

/// How a follower's reads were answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowStats {
    /// The block the view reflects (0 before the first).
    pub block: u64,
    /// Reads answered from the view.
    pub from_view: u64,
    /// Reads that went to the node (a key not followed yet, or no view yet).
    pub from_node: u64,
    /// Blocks applied.
    pub blocks: u64,
    /// Blocks rolled back (reorgs).
    pub rolled_back: u64,
}

/// A chain's adapter with a follower in front of it. See the module documentation.
pub struct Followed {
    inner: Arc<dyn ChainAdapter>,
    config: FollowConfig,
    view: Mutex<View>,
    /// When a block was last read (or the head found unchanged).
    synced: Mutex<Option<Instant>>,
    /// One catch-up at a time.
    syncing: tokio::sync::Mutex<()>,
    heads: tokio::sync::watch::Sender<BlockRef>,
    /// Transactions not in the view's blocks: when the node is next asked about each, and what
    /// it said last.
    asked: Mutex<HashMap<B256, Asked>>,
    /// The node's last answer about each order's settler events, and the view's `seq` when it
    /// was asked: good while the view applies or undoes no block with an event about the order.
    evidence: Mutex<HashMap<B256, (u64, Evidence)>>,
    /// The account's transactions sent and not yet in a block, and the blocks' room for them.
    queue: Mutex<Queue>,
    /// A gate per key the view is being taught: of the callers that miss the view on one key at
    /// once, one reads the node and the rest find the view answering after it.
    learning: Mutex<HashMap<Learning, Arc<tokio::sync::Mutex<()>>>>,
    from_view: AtomicU64,
    from_node: AtomicU64,
    blocks: AtomicU64,
    rolled_back: AtomicU64,
}

/// What a read that teaches the view is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Learning {
    State(StateKey),
    /// A user's used order nonces.
    Nonces(Address),
}

/// A caller's turn to teach the view one key; the gate is forgotten when the last turn ends.
struct Turn<'a> {
    owner: &'a Followed,
    key: Learning,
    gate: Arc<tokio::sync::Mutex<()>>,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut gates = lock(&self.owner.learning);
        // Only this turn's gate, and only when no one else waits at it (the map holds one
        // reference, this turn another).
        if gates
            .get(&self.key)
            .is_some_and(|g| Arc::ptr_eq(g, &self.gate) && Arc::strong_count(g) == 2)
        {
            gates.remove(&self.key);
        }
    }
}

/// The account's transactions in flight, and what the blocks take (for [`Backlog`]).
#[derive(Debug, Default)]
struct Queue {
    /// Each transaction sent and not yet seen in a block, with its nonce.
    sent: HashMap<B256, u64>,
    /// The nonces they use (a replacement shares its nonce).
    nonces: BTreeSet<u64>,
    /// The nonce after the highest one seen in a block.
    landed: u64,
    /// The most gas one of the account's transactions used lately (a maximum that fades by a
    /// [`Queue::SPAN`]th a block, so that the largest kind of transaction sets the room).
    own_gas: Option<f64>,
    /// The gas other senders used per block: a running mean over about [`Queue::SPAN`] blocks.
    others_gas: f64,
    /// The last block's gas limit (0: none).
    gas_limit: u64,
    /// Transactions promised to admitted intents and not sent yet, by when the promise lapses
    /// (unix milliseconds): each new nonce sent keeps the earliest-lapsing one.
    promised: std::collections::BTreeMap<u64, u64>,
}

impl Queue {
    const SPAN: f64 = 16.0;
    /// The gas a transaction is assumed to use before one was seen.
    const FIRST_GUESS: u64 = 200_000;

    fn sent(&mut self, tx: &SignedTx) {
        if tx.nonce < self.landed {
            return;
        }
        self.sent.insert(tx.hash, tx.nonce);
        // A replacement (a nonce sent before) keeps no promise.
        if self.nonces.insert(tx.nonce)
            && let Some(mut first) = self.promised.first_entry()
        {
            *first.get_mut() -= 1;
            if *first.get() == 0 {
                first.remove();
            }
        }
    }

    fn promise(&mut self, txs: u64, until_ms: u64) {
        if txs > 0 {
            *self.promised.entry(until_ms).or_default() += txs;
        }
    }

    /// The promises that have not lapsed at `now_ms` (the lapsed ones are forgotten).
    fn promised(&mut self, now_ms: u64) -> u64 {
        self.promised = self.promised.split_off(&now_ms.saturating_add(1));
        self.promised.values().sum()
    }

    fn block(&mut self, block: &ChainBlock, me: Address) {
        let Some(txs) = &block.txs else {
            return;
        };
        self.gas_limit = block.gas_limit;
        let (mut own, mut others) = (None::<u64>, 0u64);
        for tx in txs {
            if tx.from != me {
                others = others.saturating_add(tx.gas_used);
                continue;
            }
            own = own.max(Some(tx.gas_used));
            if let Some(nonce) = self.sent.remove(&tx.hash) {
                self.landed = self.landed.max(nonce + 1);
            }
        }
        let fade = 1.0 - 1.0 / Self::SPAN;
        let faded = self.own_gas.map(|was| was * fade);
        self.own_gas = match (faded, own) {
            (Some(was), Some(now)) => Some(was.max(now as f64)),
            (was, now) => was.or(now.map(|n| n as f64)),
        };
        self.others_gas += (others as f64 - self.others_gas) / Self::SPAN;
        self.nonces = self.nonces.split_off(&self.landed);
        let landed = self.landed;
        self.sent.retain(|_, nonce| *nonce >= landed);
    }

    fn backlog(&mut self, block_time_ms: u64, now_ms: u64) -> Backlog {
        let used = self.own_gas.map_or(Self::FIRST_GUESS, |g| g as u64);
        let per_tx = gas_with_margin(used) as f64;
        let per_block = if self.gas_limit == 0 {
            u64::MAX
        } else {
            ((self.gas_limit as f64 - self.others_gas) / per_tx).max(1.0) as u64
        };
        Backlog {
            sent: self.nonces.len() as u64,
            promised: self.promised(now_ms),
            per_block,
            block_time_ms,
        }
    }
}

/// When the node is next asked about a transaction missing from the view, and what it said last.
#[derive(Clone, Copy, Debug)]
struct Asked {
    /// The view's head from which the node is asked again.
    from: u64,
    /// The blocks waited before that.
    wait: u64,
    /// The node's last answer was `Dropped`: it stays dropped until it is sent again, not
    /// pending (a step with several transactions of one nonce would otherwise always find one
    /// of them "pending" and never send again).
    dropped: bool,
}

/// Now, unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Followed {
    /// A follower in front of `inner`, following `inner`'s account's transactions. It reads
    /// nothing until [`Followed::sync`] or [`Followed::spawn`].
    pub fn new(inner: Arc<dyn ChainAdapter>, config: FollowConfig) -> Arc<Self> {
        let view = View::new(config.keep_blocks, [inner.account()]).with_settlers(inner.settlers());
        Arc::new(Self {
            inner,
            config,
            view: Mutex::new(view),
            synced: Mutex::new(None),
            syncing: tokio::sync::Mutex::new(()),
            heads: tokio::sync::watch::Sender::new(BlockRef {
                number: 0,
                hash: B256::ZERO,
            }),
            asked: Mutex::new(HashMap::new()),
            evidence: Mutex::new(HashMap::new()),
            queue: Mutex::new(Queue::default()),
            learning: Mutex::new(HashMap::new()),
            from_view: AtomicU64::new(0),
            from_node: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            rolled_back: AtomicU64::new(0),
        })
    }

    /// The view (locked briefly by every read; do not hold it across an await).
    pub fn view(&self) -> MutexGuard<'_, View> {
        lock(&self.view)
    }

    /// The block the view reflects, `None` before the first.
    pub fn at(&self) -> Option<BlockRef> {
        self.view().head()
    }

    /// How reads were answered so far.
    pub fn stats(&self) -> FollowStats {
        FollowStats {
            block: self.at().map_or(0, |b| b.number),
            from_view: self.from_view.load(Ordering::Relaxed),
            from_node: self.from_node.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            rolled_back: self.rolled_back.load(Ordering::Relaxed),
        }
    }

    /// Catches the view up with the chain's head: reads each block after the view's head (the
    /// first time, only the head itself), rolling back where a block's parent is not the view's
    /// block (a reorg). Returns the block the view reflects.
    pub async fn sync(&self) -> Result<Option<BlockRef>> {
        let _one = self.syncing.lock().await;
        let mut head = self.inner.head().await?;
        // A reorg deeper than the blocks kept is walked back at most this far (and a chain that
        // reorgs faster than it is read is chased at most this long), then the view starts again.
        let mut steps = 4 * self.config.keep_blocks + 16;
        loop {
            if steps == 0 {
                self.start_over(&mut self.view());
                break;
            }
            steps -= 1;
            let at = self.view().head();
            let next = match at {
                None => head.number,
                Some(at) if at.number < head.number => at.number + 1,
                // The same height with another hash: the head block was replaced, either before
                // the view read it or since `head` was asked for (then the view's is the newer).
                Some(at) if at.number == head.number && at.hash != head.hash => {
                    let latest = self.inner.head().await?;
                    if latest == at {
                        break;
                    }
                    if latest == head {
                        self.roll_back();
                    }
                    head = latest;
                    continue;
                }
                // Caught up (or the node answering was behind the view: nothing to do).
                Some(_) => break,
            };
            let block = match self.inner.block(next).await {
                Ok(block) => block,
                // A node behind the one that gave the head (several behind one URL): later.
                Err(AdapterError::Chain { .. }) if at.is_some() => break,
                Err(e) => return Err(e),
            };
            if self.take(&block).is_err() {
                self.roll_back();
            }
        }
        *lock(&self.synced) = Some(Instant::now());
        Ok(self.view().head())
    }

    /// Applies `block` and announces it.
    fn take(&self, block: &ChainBlock) -> std::result::Result<(), NotNext> {
        self.view().apply(block)?;
        lock(&self.queue).block(block, self.inner.account());
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.heads.send_replace(block.block);
        Ok(())
    }

    /// Rolls the view's head block back (or starts the view again when it keeps no older block).
    fn roll_back(&self) {
        let mut view = self.view();
        if !view.undo() {
            self.start_over(&mut view);
        }
        self.rolled_back.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets the view and the evidence kept beside it: the next block read starts them again.
    fn start_over(&self, view: &mut View) {
        view.reset();
        lock(&self.evidence).clear();
    }

    /// Follows the chain until the last [`Arc`] of `self` is dropped: catches up at every new
    /// head of the wrapped adapter's feed, or every [`FollowConfig::poll`] without one.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me: Weak<Self> = Arc::downgrade(self);
        let mut feed = self.inner.new_heads();
        let poll = self.config.poll;
        let chain = self.inner.chain_id();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let Some(follower) = me.upgrade() else {
                    return;
                };
                match follower.sync().await {
                    Ok(_) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(%chain, error = %e, "the follower cannot read the chain; trying again");
                        }
                        failing = true;
                    }
                }
                drop(follower);
                match &mut feed {
                    Some(feed) => {
                        let _ = tokio::time::timeout(poll * 4, feed.changed()).await;
                    }
                    None => tokio::time::sleep(poll).await,
                }
            }
        })
    }

    /// Waits for the turn to teach the view `key` (at once when no one else is).
    async fn turn(&self, key: Learning) -> Turn<'_> {
        let gate = lock(&self.learning).entry(key).or_default().clone();
        let held = gate.clone().lock_owned().await;
        Turn {
            owner: self,
            key,
            gate,
            _held: held,
        }
    }

    /// What `look` finds in the view; on a miss, the turn to teach the view `key` (read the node
    /// while holding it), unless the caller whose turn came first taught it meanwhile.
    async fn look_or_turn<T>(
        &self,
        key: Learning,
        look: impl Fn(&View) -> Option<T>,
    ) -> std::result::Result<T, Turn<'_>> {
        let hit = || {
            let found = look(&self.view());
            if found.is_some() {
                self.from_view.fetch_add(1, Ordering::Relaxed);
            }
            found
        };
        if let Some(found) = hit() {
            return Ok(found);
        }
        let turn = self.turn(key).await;
        hit().ok_or(turn)
    }

    /// Whether the view read a block recently enough to answer for the chain's clock.
    fn fresh(&self) -> bool {
        lock(&self.synced).is_some_and(|at| at.elapsed() < self.config.stale_after)
    }

    /// `key` from the view; a key not followed yet is read at the view's block and followed from
    /// then on. Before the first block (or when the node cannot read at a block), the node's
    /// latest answer.
    async fn fact(&self, key: StateKey) -> Result<StateValue> {
        let _turn = match self
            .look_or_turn(Learning::State(key), |v| v.get(&key))
            .await
        {
            Ok(value) => return Ok(value),
            Err(turn) => turn,
        };
        let at = self.at();
        self.from_node.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = at {
            match self.inner.read_at(key, at.number).await {
                Ok(value) => {
                    self.view().learn(key, value, at);
                    return Ok(value);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a read at the view's block failed; reading the latest state instead");
                }
            }
        }
        Ok(match key {
            StateKey::Balance { token, owner } => {
                StateValue::Amount(self.inner.balance(token, owner).await?)
            }
            StateKey::Allowance {
                token,
                owner,
                spender,
            } => StateValue::Amount(self.inner.allowance(token, owner, spender).await?),
            StateKey::Reserves { pool } => StateValue::Reserves(self.inner.reserves(pool).await?),
            StateKey::NonceUsed { user, nonce } => {
                StateValue::Flag(self.inner.nonce_used(user, nonce).await?)
            }
        })
    }

    async fn amount(&self, key: StateKey) -> Result<U256> {
        match self.fact(key).await? {
            StateValue::Amount(a) => Ok(a),
            _ => Err(AdapterError::chain("reading an amount", "not an amount")),
        }
    }

    /// The settlers' events about `order`: the node's answer, asked again only once the view has
    /// applied or undone a block with an event about the order since (or when the view is not
    /// fresh). An answer that lacks an event the view has seen (a node behind the view) is not
    /// kept.
    async fn order_evidence(&self, order: OrderId) -> Result<Evidence> {
        if !self.fresh() {
            return self.inner.evidence(order).await;
        }
        let asked_at = {
            let view = self.view();
            let (touched, _) = view.order_events(&order.0);
            if let Some((at, evidence)) = lock(&self.evidence).get(&order.0)
                && touched <= *at
            {
                self.from_view.fetch_add(1, Ordering::Relaxed);
                return Ok(evidence.clone());
            }
            view.seq()
        };
        self.from_node.fetch_add(1, Ordering::Relaxed);
        let evidence = self.inner.evidence(order).await?;
        let complete = {
            let view = self.view();
            let (_, seen) = view.order_events(&order.0);
            let answered: Vec<B256> = evidence
                .fills
                .iter()
                .map(|f| f.at.tx)
                .chain(evidence.settled.iter().map(|(_, at)| at.tx))
                .chain(evidence.refunded.iter().map(|(_, at)| at.tx))
                .collect();
            seen.iter()
                .all(|(at, _)| at.tx == B256::ZERO || answered.contains(&at.tx))
        };
        if complete {
            let mut kept = lock(&self.evidence);
            if kept.len() >= MAX_KEPT_EVIDENCE {
                kept.clear();
            }
            kept.insert(order.0, (asked_at, evidence.clone()));
        }
        Ok(evidence)
    }

    /// Whether `user` used `nonce`: from the view once it follows the user's nonces. A user it
    /// does not follow yet costs one look at the settler's `NonceUsed` events up to the view's
    /// block, after which the blocks' events keep the set; an adapter that cannot list them is
    /// asked per nonce.
    async fn order_nonce_used(&self, user: Address, nonce: U256) -> Result<bool> {
        let look = |v: &View| v.nonce_used(user, nonce);
        let _turn = match self.look_or_turn(Learning::Nonces(user), look).await {
            Ok(used) => return Ok(used),
            Err(turn) => turn,
        };
        let at = self.at();
        self.from_node.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = at {
            match self.inner.used_nonces(user, at.number).await {
                Ok(used) => {
                    let answer = used.contains(&nonce);
                    self.view().learn_nonces(user, used, at);
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "listing a user's used nonces failed; asking for the one nonce");
                }
            }
        }
        self.inner.nonce_used(user, nonce).await
    }

    /// The fill `wanted` of `order`: from the settler events of the blocks the view read when it
    /// is there (a canonical block's event is the chain's word), else from the node's evidence.
    /// The view's lack of it proves nothing (the fill may predate the view), so it never answers
    /// "none" alone.
    async fn find_fill(&self, order: OrderId, wanted: WantedFill) -> Result<Option<FillEvidence>> {
        if self.fresh() {
            let found = {
                let view = self.view();
                let (_, events) = view.order_events(&order.0);
                view.settlers().and_then(|settlers| {
                    abi::evidence(order, settlers, events.iter().map(|(at, log)| (log, *at)))
                        .fill_of(&wanted)
                })
            };
            if let Some(fill) = found {
                self.from_view.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(fill));
            }
        }
        Ok(self.order_evidence(order).await?.fill_of(&wanted))
    }

    /// What the view says about `tx`: its status, or that the node is to be asked (with the
    /// view's head when the transaction is simply not in the view's blocks).
    fn look_up(&self, tx: &SignedTx, seen: Option<&BlockRef>) -> Result<TxStatus, Option<u64>> {
        // A view that stopped reading blocks (its task gone, the node unreachable) says nothing:
        // its head no longer moves, so a transaction missing from it would stay pending.
        if !self.fresh() {
            return Err(None);
        }
        let view = self.view();
        let Some(head) = view.head().filter(|_| view.has_receipts()) else {
            return Err(None);
        };
        match view.tx(&tx.hash) {
            Some((block, found)) if found.success => Ok(TxStatus::Included(Inclusion {
                block: *block,
                success: true,
                revert_reason: None,
                gas_used: found.gas_used,
                logs: found.logs.clone(),
            })),
            // Reverted: the node tells why.
            Some(_) => Err(None),
            None => match seen.map(|was| (was, view.hash_at(was.number))) {
                // Seen in a block the view holds with another hash: reorged out, and not (yet)
                // in any block since.
                Some((was, Some(hash))) if hash != was.hash => {
                    Ok(TxStatus::ReorgedOut { was: *was })
                }
                // Seen in a block the view does not hold (or holds without it): ask.
                Some(_) => Err(None),
                None => Err(Some(head.number)),
            },
        }
    }

    /// What became of `tx`, from the view's blocks where they tell; a transaction missing from
    /// them is pending until it has been so for [`FollowConfig::quiet_blocks`], then the node is
    /// asked (and again after twice as many blocks, and so on, up to eight times as many); in
    /// between, the node's last answer holds (pending, or dropped until it is sent again).
    async fn tx_status(&self, tx: &SignedTx, seen: Option<&BlockRef>) -> Result<TxStatus> {
        match self.look_up(tx, seen) {
            Ok(status) => {
                lock(&self.asked).remove(&tx.hash);
                return Ok(status);
            }
            Err(Some(head)) => {
                let quiet = self.config.quiet_blocks;
                let mut asked = lock(&self.asked);
                let last = *asked.entry(tx.hash).or_insert(Asked {
                    from: head + quiet,
                    wait: quiet,
                    dropped: false,
                });
                if head < last.from {
                    return Ok(if last.dropped {
                        TxStatus::Dropped
                    } else {
                        TxStatus::Pending
                    });
                }
                let wait = (last.wait * 2).min(quiet * 8).max(1);
                asked.insert(
                    tx.hash,
                    Asked {
                        from: head + wait,
                        wait,
                        ..last
                    },
                );
            }
            Err(None) => {}
        }
        let status = self.inner.status(tx, seen).await?;
        let mut asked = lock(&self.asked);
        match status {
            TxStatus::Included(_) => {
                asked.remove(&tx.hash);
            }
            _ => {
                if let Some(a) = asked.get_mut(&tx.hash) {
                    a.dropped = status == TxStatus::Dropped;
                }
            }
        }
        Ok(status)
    }
}

impl ChainAdapter for Followed {
    fn chain_id(&self) -> ChainId {
        self.inner.chain_id()
    }

    fn account(&self) -> Address {
        self.inner.account()
    }

    fn head(&self) -> BoxFuture<'_, Result<BlockRef>> {
        Box::pin(async move {
            match self.at().filter(|_| self.fresh()) {
                Some(head) => Ok(head),
                None => self.inner.head().await,
            }
        })
    }

    fn finalized(&self) -> BoxFuture<'_, Result<BlockRef>> {
        self.inner.finalized()
    }

    fn conditions(&self) -> BoxFuture<'_, Result<Conditions>> {
        Box::pin(async move {
            let clock = self.view().clock().filter(|_| self.fresh());
            let Some((head, timestamp, base_fee, block_time_ms)) = clock else {
                return self.inner.conditions().await;
            };
            let health = self.inner.rpc_health();
            Ok(Conditions {
                head,
                timestamp,
                base_fee,
                block_time_ms,
                rpc_calls: health.calls,
                rpc_errors: health.errors,
                rpc_latency_ms: health.latency_ms,
            })
        })
    }

    fn new_heads(&self) -> Option<tokio::sync::watch::Receiver<BlockRef>> {
        Some(self.heads.subscribe())
    }

    fn balance(&self, token: Address, owner: Address) -> BoxFuture<'_, Result<U256>> {
        Box::pin(self.amount(StateKey::Balance { token, owner }))
    }

    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, Result<U256>> {
        Box::pin(self.amount(StateKey::Allowance {
            token,
            owner,
            spender,
        }))
    }

    fn reserves(&self, pool: Address) -> BoxFuture<'_, Result<Reserves>> {
        Box::pin(async move {
            match self.fact(StateKey::Reserves { pool }).await? {
                StateValue::Reserves(r) => Ok(r),
                _ => Err(AdapterError::chain("reading reserves", "not reserves")),
            }
        })
    }

    fn escrow(&self, order: OrderId) -> BoxFuture<'_, Result<EscrowStatus>> {
        self.inner.escrow(order)
    }

    fn sign_digest(&self, digest: B256) -> Result<alloy::primitives::Signature> {
        self.inner.sign_digest(digest)
    }

    fn opener(&self, order: OrderId) -> BoxFuture<'_, Result<Option<Address>>> {
        self.inner.opener(order)
    }

    fn attesters(&self) -> BoxFuture<'_, Result<crate::attestation::AttesterSet>> {
        self.inner.attesters()
    }

    fn filled_by(
        &self,
        order: OrderId,
        output_index: u32,
    ) -> BoxFuture<'_, Result<Option<Address>>> {
        self.inner.filled_by(order, output_index)
    }

    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, Result<bool>> {
        Box::pin(self.order_nonce_used(user, nonce))
    }

    fn evidence(&self, order: OrderId) -> BoxFuture<'_, Result<Evidence>> {
        Box::pin(self.order_evidence(order))
    }

    fn fill_of(
        &self,
        order: OrderId,
        wanted: WantedFill,
    ) -> BoxFuture<'_, Result<Option<FillEvidence>>> {
        Box::pin(self.find_fill(order, wanted))
    }

    fn settlers(&self) -> Option<crate::abi::Settlers> {
        self.inner.settlers()
    }

    fn prepare(&self, tx: TxRequest) -> BoxFuture<'_, Result<SignedTx>> {
        self.inner.prepare(tx)
    }

    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.inner.broadcast(tx).await?;
            // Sent again: pending until the view or the node says otherwise.
            if let Some(a) = lock(&self.asked).get_mut(&tx.hash) {
                a.dropped = false;
            }
            if tx.from == self.inner.account() {
                lock(&self.queue).sent(tx);
            }
            Ok(())
        })
    }

    fn backlog(&self) -> Option<Backlog> {
        let block_time_ms = {
            let view = self.view();
            if !self.fresh() || !view.has_receipts() {
                return None;
            }
            view.clock()?.3
        };
        Some(lock(&self.queue).backlog(block_time_ms, unix_ms()))
    }

    fn promise(&self, txs: u64, until_ms: u64) {
        lock(&self.queue).promise(txs, until_ms);
    }

    fn release(&self, tx: &SignedTx) {
        self.inner.release(tx);
    }

    fn plug_nonce_gaps(&self) -> BoxFuture<'_, Result<u32>> {
        self.inner.plug_nonce_gaps()
    }

    fn block(&self, number: u64) -> BoxFuture<'_, Result<ChainBlock>> {
        self.inner.block(number)
    }

    fn read_at(&self, key: StateKey, number: u64) -> BoxFuture<'_, Result<StateValue>> {
        self.inner.read_at(key, number)
    }

    fn rpc_health(&self) -> RpcHealth {
        self.inner.rpc_health()
    }

    fn rpc_calls_by_method(&self) -> Vec<(String, u64)> {
        self.inner.rpc_calls_by_method()
    }

    fn follow_stats(&self) -> Option<FollowStats> {
        Some(self.stats())
    }

    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>> {
        Box::pin(self.tx_status(tx, seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::BlockTx;

    const ME: Address = Address::repeat_byte(1);

    fn tx(nonce: u64, n: u8) -> SignedTx {
        SignedTx {
            chain: ChainId(1),
            from: ME,
            nonce,
            hash: B256::repeat_byte(n),
            raw: Default::default(),
        }
    }

    /// A block with a 1,000,000 gas limit holding `txs` (hash, sender, gas used).
    fn block(txs: &[(B256, Address, u64)]) -> ChainBlock {
        ChainBlock {
            block: BlockRef {
                number: 1,
                hash: B256::ZERO,
            },
            parent: B256::ZERO,
            timestamp: 0,
            base_fee: 0,
            gas_limit: 1_000_000,
            txs: Some(
                txs.iter()
                    .map(|(hash, from, gas_used)| BlockTx {
                        hash: *hash,
                        from: *from,
                        success: true,
                        gas_used: *gas_used,
                        logs: Vec::new(),
                    })
                    .collect(),
            ),
            logs: Vec::new(),
        }
    }

    #[test]
    fn the_backlog_counts_promises_until_their_nonces_are_sent_or_they_lapse() {
        let mut q = Queue::default();
        let queued = |q: &mut Queue, now_ms| {
            let b = q.backlog(1_000, now_ms);
            (b.sent, b.promised)
        };
        q.promise(3, 5_000);
        q.promise(2, 9_000);
        assert_eq!(queued(&mut q, 0), (0, 5));
        // A new nonce keeps the earliest-lapsing promise; its replacement keeps none.
        q.sent(&tx(0, 1));
        q.sent(&tx(0, 2));
        assert_eq!(queued(&mut q, 0), (1, 4), "one sent and four promised");
        q.sent(&tx(1, 3));
        // In a block: no longer queued.
        q.block(&block(&[(B256::repeat_byte(2), ME, 90_000)]), ME);
        assert_eq!(queued(&mut q, 0), (1, 3), "nonce 1 sent, three promised");
        // At 5,000 ms the first promises lapse (one of them was kept by nonce 1).
        assert_eq!(queued(&mut q, 5_000), (1, 2));
        assert_eq!(queued(&mut q, 9_000), (1, 0));
    }

    #[test]
    fn a_block_takes_what_its_gas_limit_leaves_beside_others_over_the_accounts_largest_use() {
        let mut q = Queue::default();
        // Before any block: no limit known, every transaction fits.
        assert_eq!(q.backlog(1_000, 0).per_block, u64::MAX);
        q.block(
            &block(&[
                (B256::repeat_byte(1), ME, 100_000),
                (B256::repeat_byte(2), Address::repeat_byte(9), 160_000),
            ]),
            ME,
        );
        // Others' mean gas starts at 160,000 / 16 = 10,000; each of ours reserves
        // gas_with_margin(100,000) = 170,000: (1,000,000 − 10,000) / 170,000 = 5 a block.
        let backlog = q.backlog(1_000, 0);
        assert_eq!(gas_with_margin(100_000), 170_000);
        assert_eq!(backlog.per_block, 5);
        q.promise(12, u64::MAX);
        // Twelve ahead, five a block: the next one waits two blocks more, though one sent now
        // goes ahead of the promises.
        assert_eq!(q.backlog(1_000, 0).wait_ms(), 2_000);
        assert_eq!(q.backlog(1_000, 0).sent_wait_ms(), 0);
        for nonce in 0..6 {
            q.sent(&tx(nonce, 10 + nonce as u8));
        }
        assert_eq!(q.backlog(1_000, 0).sent_wait_ms(), 1_000);
    }
}
