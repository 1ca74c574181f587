//! A follower's view of one chain: the state it follows (balances, allowances, pool reserves) as
//! of the block it has read last, the transactions of the accounts it follows, and a journal of
//! the recent blocks to roll back through a reorg. Pure: it reads nothing itself.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use alloy::primitives::{Address, B256, Log, U256};
use alloy::sol_types::SolEvent;

use crate::abi::Settlers;
use crate::contracts::{DestinationSettler, OriginSettler, Pool, TestToken};
use crate::port::{BlockRef, BlockTx, ChainBlock, Conditions, EventAt, StateKey, StateValue};

/// One block the view applied, with what undoes it.
#[derive(Debug)]
struct Applied {
    block: BlockRef,
    timestamp: u64,
    base_fee: u128,
    /// Whether the block came with its receipts.
    receipts: bool,
    /// Each key it changed (or that was learnt while it was the head) and its value before:
    /// `None`, the key was not followed.
    undo: Vec<(StateKey, Option<StateValue>)>,
    /// The followed accounts' transactions in it.
    txs: Vec<B256>,
    /// The orders its settler events (fills, settlements, refunds) are about.
    orders: Vec<B256>,
}

/// A block that does not extend the view's head: its parent is another block.
#[derive(Debug, PartialEq, Eq)]
pub struct NotNext;

/// What a follower knows about its chain.
#[derive(Debug)]
pub struct View {
    keep: usize,
    senders: HashSet<Address>,
    blocks: VecDeque<Applied>,
    values: BTreeMap<StateKey, StateValue>,
    txs: HashMap<B256, (BlockRef, BlockTx)>,
    /// Counts every block applied or undone (and every reset).
    seq: u64,
    /// `seq` at the last reset.
    reset_seq: u64,
    /// Per order: when a block with a settler event about it was last applied or undone (a
    /// `seq`), and those events in the blocks kept.
    orders: HashMap<B256, (u64, Vec<(EventAt, Log)>)>,
    /// The settlers whose events count (`None`: any contract's events of their kinds).
    settlers: Option<Settlers>,
    /// The users whose used order nonces the view follows (each used one is a
    /// [`StateKey::NonceUsed`] set to `true`), and the block each was learnt at.
    nonce_users: HashMap<Address, u64>,
}

impl View {
    /// An empty view that keeps `keep` blocks to roll back through, and the transactions of
    /// `senders`.
    pub fn new(keep: usize, senders: impl IntoIterator<Item = Address>) -> Self {
        Self {
            keep: keep.max(1),
            senders: senders.into_iter().collect(),
            blocks: VecDeque::new(),
            values: BTreeMap::new(),
            txs: HashMap::new(),
            seq: 0,
            reset_seq: 0,
            orders: HashMap::new(),
            settlers: None,
            nonce_users: HashMap::new(),
        }
    }

    /// The settlers whose events the view counts, when known.
    pub fn settlers(&self) -> Option<&Settlers> {
        self.settlers.as_ref()
    }

    /// Counts settler events of `settlers` only (not look-alikes from other contracts).
    pub fn with_settlers(mut self, settlers: Option<Settlers>) -> Self {
        self.settlers = settlers;
        self
    }

    /// Counts every block applied or undone: a reader that saw `seq` and then sees it again has
    /// seen no change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the view last applied or undid a block with a settler event about `order` (a
    /// [`View::seq`]; 0: never), and those events in the blocks kept.
    /// After a [`View::reset`], every order counts as touched by it.
    pub fn order_events(&self, order: &B256) -> (u64, &[(EventAt, Log)]) {
        self.orders
            .get(order)
            .map_or((self.reset_seq, &[][..]), |(seq, txs)| {
                (*seq, txs.as_slice())
            })
    }

    /// The block the view reflects; `None` before the first.
    pub fn head(&self) -> Option<BlockRef> {
        self.blocks.back().map(|b| b.block)
    }

    /// The hash of block `number` as the view has it, while it keeps that block.
    pub fn hash_at(&self, number: u64) -> Option<B256> {
        let first = self.blocks.front()?.block.number;
        let index = usize::try_from(number.checked_sub(first)?).ok()?;
        self.blocks.get(index).map(|b| b.block.hash)
    }

    /// Whether the head block came with its receipts (so a transaction not in the view is not in
    /// the blocks it read).
    pub fn has_receipts(&self) -> bool {
        self.blocks.back().is_some_and(|b| b.receipts)
    }

    /// The head's clock and fee, and the mean block time over the blocks kept (up to
    /// [`Conditions::BLOCK_TIME_WINDOW`]); `None` before the first block.
    pub fn clock(&self) -> Option<(BlockRef, u64, u128, u64)> {
        let head = self.blocks.back()?;
        let span = (self.blocks.len() - 1).min(Conditions::BLOCK_TIME_WINDOW as usize);
        let then = self.blocks[self.blocks.len() - 1 - span].timestamp;
        let block_time = Conditions::mean_block_time_ms(span as u64, then, head.timestamp);
        Some((head.block, head.timestamp, head.base_fee, block_time))
    }

    /// `key`'s value at the head, when the view follows it.
    pub fn get(&self, key: &StateKey) -> Option<StateValue> {
        self.values.get(key).copied()
    }

    /// Whether `user` used order `nonce`, when the view follows the user's nonces.
    pub fn nonce_used(&self, user: Address, nonce: U256) -> Option<bool> {
        self.nonce_users.contains_key(&user).then(|| {
            self.values.get(&StateKey::NonceUsed { user, nonce }) == Some(&StateValue::Flag(true))
        })
    }

    /// Starts following `user`'s order nonces from `used`, every nonce the user had used by block
    /// `at`: taken only when `at` is still the view's head and the user is not followed yet (as
    /// [`View::learn`]). Whether it was taken.
    pub fn learn_nonces(
        &mut self,
        user: Address,
        used: impl IntoIterator<Item = U256>,
        at: BlockRef,
    ) -> bool {
        if self.head() != Some(at) || self.nonce_users.contains_key(&user) {
            return false;
        }
        self.nonce_users.insert(user, at.number);
        for nonce in used {
            self.learn(
                StateKey::NonceUsed { user, nonce },
                StateValue::Flag(true),
                at,
            );
        }
        true
    }

    /// Where a followed account's transaction was included, among the blocks kept.
    pub fn tx(&self, hash: &B256) -> Option<&(BlockRef, BlockTx)> {
        self.txs.get(hash)
    }

    /// Starts following `key` from `value`, read at block `at`: taken only when `at` is still the
    /// view's head (a value read at another block is not the head's) and the key is not followed
    /// yet. Whether it was taken.
    pub fn learn(&mut self, key: StateKey, value: StateValue, at: BlockRef) -> bool {
        let Some(head) = self.blocks.back_mut() else {
            return false;
        };
        if head.block != at || self.values.contains_key(&key) {
            return false;
        }
        head.undo.push((key, None));
        self.values.insert(key, value);
        true
    }

    /// Applies `block` on top of the head (or as the first block).
    pub fn apply(&mut self, block: &ChainBlock) -> Result<(), NotNext> {
        if let Some(head) = self.head()
            && (block.parent != head.hash || block.block.number != head.number + 1)
        {
            return Err(NotNext);
        }
        self.seq += 1;
        let mut applied = Applied {
            block: block.block,
            timestamp: block.timestamp,
            base_fee: block.base_fee,
            receipts: block.txs.is_some(),
            undo: Vec::new(),
            txs: Vec::new(),
            orders: Vec::new(),
        };
        for (log, tx) in block.logs() {
            self.apply_log(log, &mut applied.undo);
            if let Some(order) = settler_order(log, self.settlers.as_ref()) {
                let entry = self.orders.entry(order).or_default();
                entry.0 = self.seq;
                let at = EventAt {
                    block: block.block,
                    tx,
                };
                entry.1.push((at, log.clone()));
                applied.orders.push(order);
            }
        }
        for tx in block.txs.iter().flatten() {
            if self.senders.contains(&tx.from) {
                applied.txs.push(tx.hash);
                self.txs.insert(tx.hash, (block.block, tx.clone()));
            }
        }
        self.blocks.push_back(applied);
        while self.blocks.len() > self.keep {
            if let Some(old) = self.blocks.pop_front() {
                for tx in old.txs {
                    self.txs.remove(&tx);
                }
                for order in old.orders {
                    if let Some((_, txs)) = self.orders.get_mut(&order) {
                        txs.retain(|(at, _)| at.block.number > old.block.number);
                        if txs.is_empty() {
                            self.orders.remove(&order);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Rolls the head block back; false when no block is kept to roll back to (then only
    /// [`View::reset`] helps).
    pub fn undo(&mut self) -> bool {
        if self.blocks.len() < 2 {
            return false;
        }
        let Some(head) = self.blocks.pop_back() else {
            return false;
        };
        for (key, before) in head.undo.into_iter().rev() {
            match before {
                Some(value) => self.values.insert(key, value),
                None => self.values.remove(&key),
            };
        }
        for tx in head.txs {
            self.txs.remove(&tx);
        }
        // Nonces learnt at the block undone are forgotten with it (its undo list has them).
        self.nonce_users.retain(|_, at| *at < head.block.number);
        self.seq += 1;
        for order in head.orders {
            if let Some((seq, txs)) = self.orders.get_mut(&order) {
                *seq = self.seq;
                txs.retain(|(at, _)| at.block.number < head.block.number);
            }
        }
        true
    }

    /// Forgets everything: the next block applied starts the view again.
    pub fn reset(&mut self) {
        self.blocks.clear();
        self.values.clear();
        self.txs.clear();
        self.orders.clear();
        self.nonce_users.clear();
        self.seq += 1;
        self.reset_seq = self.seq;
    }

    /// Sets (or, with `None`, stops following) `key`, remembering its value before in `undo`.
    fn set(
        &mut self,
        key: StateKey,
        value: Option<StateValue>,
        undo: &mut Vec<(StateKey, Option<StateValue>)>,
    ) {
        let before = match value {
            Some(v) => self.values.insert(key, v),
            None => self.values.remove(&key),
        };
        undo.push((key, before));
    }

    fn amount(&self, key: &StateKey) -> Option<U256> {
        match self.values.get(key) {
            Some(StateValue::Amount(a)) => Some(*a),
            _ => None,
        }
    }

    /// What one log changes among the followed keys. A transfer from an owner may have spent an
    /// allowance of theirs (ERC-20 `transferFrom` emits no `Approval`), and who spent it is not in
    /// the log: every allowance of that owner and token stops being followed (to be read again)
    /// unless it is unlimited (`type(uint256).max`, which `transferFrom` does not lower).
    fn apply_log(&mut self, log: &Log, undo: &mut Vec<(StateKey, Option<StateValue>)>) {
        let Some(topic) = log.data.topics().first() else {
            return;
        };
        let token = log.address;
        if *topic == TestToken::Transfer::SIGNATURE_HASH {
            let Ok(e) = TestToken::Transfer::decode_log_data(&log.data) else {
                return;
            };
            let from = StateKey::Balance {
                token,
                owner: e.from,
            };
            if let Some(held) = self.amount(&from) {
                let after = held.checked_sub(e.value).map(StateValue::Amount);
                self.set(from, after, undo);
            }
            let to = StateKey::Balance { token, owner: e.to };
            if let Some(held) = self.amount(&to) {
                let after = held.checked_add(e.value).map(StateValue::Amount);
                self.set(to, after, undo);
            }
            let spent: Vec<StateKey> = self
                .values
                .range(
                    StateKey::Allowance {
                        token,
                        owner: e.from,
                        spender: Address::ZERO,
                    }..=StateKey::Allowance {
                        token,
                        owner: e.from,
                        spender: Address::repeat_byte(0xff),
                    },
                )
                .filter(|(_, v)| **v != StateValue::Amount(U256::MAX))
                .map(|(k, _)| *k)
                .collect();
            for key in spent {
                self.set(key, None, undo);
            }
        } else if *topic == TestToken::Approval::SIGNATURE_HASH {
            let Ok(e) = TestToken::Approval::decode_log_data(&log.data) else {
                return;
            };
            let key = StateKey::Allowance {
                token,
                owner: e.owner,
                spender: e.spender,
            };
            if self.values.contains_key(&key) {
                self.set(key, Some(StateValue::Amount(e.value)), undo);
            }
        } else if *topic == OriginSettler::NonceUsed::SIGNATURE_HASH {
            if self.settlers.is_some_and(|s| log.address != s.origin) {
                return;
            }
            let Ok(e) = OriginSettler::NonceUsed::decode_log_data(&log.data) else {
                return;
            };
            if self.nonce_users.contains_key(&e.user) {
                let key = StateKey::NonceUsed {
                    user: e.user,
                    nonce: e.nonce,
                };
                self.set(key, Some(StateValue::Flag(true)), undo);
            }
        } else if *topic == Pool::Sync::SIGNATURE_HASH {
            let Ok(e) = Pool::Sync::decode_log_data(&log.data) else {
                return;
            };
            let key = StateKey::Reserves { pool: log.address };
            if let Some(StateValue::Reserves(mut r)) = self.values.get(&key).copied() {
                r.reserve0 = e.reserve0;
                r.reserve1 = e.reserve1;
                self.set(key, Some(StateValue::Reserves(r)), undo);
            }
        }
    }
}

/// The order a settler's `Filled`, `Settled` or `Refunded` event is about (from `settlers`, when
/// known).
fn settler_order(log: &Log, settlers: Option<&Settlers>) -> Option<B256> {
    if settlers.is_some_and(|s| log.address != s.origin && log.address != s.destination) {
        return None;
    }
    let topics = log.data.topics();
    let kind = *topics.first()?;
    let about = kind == DestinationSettler::Filled::SIGNATURE_HASH
        || kind == OriginSettler::Settled::SIGNATURE_HASH
        || kind == OriginSettler::Refunded::SIGNATURE_HASH;
    about.then(|| topics.get(1).copied()).flatten()
}
