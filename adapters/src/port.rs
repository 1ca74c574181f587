//! The `ChainAdapter` port: how the engine reaches a chain. Solvers implement it for their own
//! chains; baton ships [`crate::evm`] (alloy, real nodes) and [`crate::sim`] (in memory, with fault
//! injection). [`crate::conformance`] is the suite every implementation must pass.
//!
//! A step reaches a chain as an [`Op`] (open, fill, settle, refund, swap, approve, …), which the
//! adapter encodes for its chain and signs with its account, without sending it: the engine writes
//! the raw bytes, hash and nonce to its log *before* it broadcasts (write-ahead). Broadcasting the
//! same bytes again is always harmless. A stuck transaction is replaced by preparing the same op with
//! the same nonce (`TxRequest::nonce`) and [`Fees::bumped`].

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::{Address, B256, Bytes, Log, U256};
use baton_planner::order::{Call, GaslessCrossChainOrder, Output};
use baton_planner::{ChainId, OrderId};
use serde::{Deserialize, Serialize};

use crate::error::{AdapterError, Result};

/// A boxed future, so the trait stays object-safe (`Arc<dyn ChainAdapter>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A block by number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Height.
    pub number: u64,
    /// Hash.
    pub hash: B256,
}

/// A chain's network conditions as the adapter sees them now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conditions {
    /// The latest block.
    pub head: BlockRef,
    /// The latest block's timestamp, unix seconds: the chain's clock, against which the settlers
    /// check deadlines.
    pub timestamp: u64,
    /// The latest block's base fee, wei per gas.
    pub base_fee: u128,
    /// Mean time between the last (up to) ten blocks, milliseconds; 0 when there is no history.
    pub block_time_ms: u64,
    /// RPC calls this adapter has made (each retry counts), and how many failed.
    pub rpc_calls: u64,
    /// Failed RPC calls.
    pub rpc_errors: u64,
    /// Mean RPC latency, milliseconds.
    pub rpc_latency_ms: u64,
}

impl Conditions {
    /// Blocks over which [`Conditions::block_time_ms`] is observed.
    pub const BLOCK_TIME_WINDOW: u64 = 10;

    /// Mean milliseconds per block over `span` blocks from unix second `then` to `now` (0 when
    /// `span` is 0).
    pub fn mean_block_time_ms(span: u64, then: u64, now: u64) -> u64 {
        (now.saturating_sub(then) * 1000)
            .checked_div(span)
            .unwrap_or(0)
    }

    /// The fraction of RPC calls that failed, 0.0 when none were made.
    pub fn rpc_error_rate(&self) -> f64 {
        if self.rpc_calls == 0 {
            0.0
        } else {
            self.rpc_errors as f64 / self.rpc_calls as f64
        }
    }
}

/// What a step does on a chain. The adapter encodes it (for EVM chains: a call to the settler, pool
/// or token contract) and signs it as its own account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// ERC-7683 `openFor`: pull the user's inputs into the origin escrow, with the user's signature.
    Open {
        /// The order as the user signed it (its `originSettler` is the contract called).
        order: GaslessCrossChainOrder,
        /// The user's 65-byte EIP-712 signature.
        signature: Bytes,
    },
    /// ERC-7683 `fill` at the chain's destination settler: deliver `output` from the adapter's account.
    Fill {
        /// The order (the lead order of the intent).
        order_id: OrderId,
        /// Which output of the order.
        output_index: u32,
        /// The output: token, amount, recipient, chain.
        output: Output,
        /// Calls to run after the delivery (for this output).
        calls: Vec<Call>,
        /// The order's fill deadline (unix seconds): the destination settler refuses the fill
        /// after it.
        fill_deadline: u32,
    },
    /// Repay `filler` from the origin escrow, with a quorum of attesters' signed
    /// `Fill(orderId, filler, deliveries)`.
    Settle {
        /// The order.
        order_id: OrderId,
        /// Who is repaid.
        filler: Address,
        /// What the attesters vouch was delivered.
        deliveries: Vec<crate::attestation::Delivery>,
        /// The quorum's 65-byte EIP-712 signatures, signer ascending.
        attestations: Vec<Bytes>,
    },
    /// Return the escrowed inputs to the user once the fill deadline has passed.
    Refund {
        /// The order.
        order_id: OrderId,
    },
    /// Return the escrowed inputs at once, with a quorum of attesters' signed `Cancel(orderId)`.
    RefundWithCancel {
        /// The order.
        order_id: OrderId,
        /// The quorum's 65-byte EIP-712 signatures, signer ascending.
        attestations: Vec<Bytes>,
    },
    /// Allow `spender` to move `amount` of the adapter account's `token`.
    Approve {
        /// The token.
        token: Address,
        /// Who may spend.
        spender: Address,
        /// How much.
        amount: U256,
    },
    /// Send `amount` of `token` to `to`.
    Transfer {
        /// The token.
        token: Address,
        /// The recipient.
        to: Address,
        /// How much.
        amount: U256,
    },
    /// Swap on a constant-product pool (the caller must have approved the pool for `token_in`).
    Swap {
        /// The pool.
        pool: Address,
        /// What is sold.
        token_in: Address,
        /// How much is sold.
        amount_in: U256,
        /// Revert below this output.
        min_out: U256,
        /// Who receives the output.
        to: Address,
    },
    /// A raw contract call (EVM chains only; other adapters answer `Unsupported`).
    Call {
        /// The contract.
        to: Address,
        /// Calldata.
        data: Bytes,
        /// Native value sent.
        value: U256,
    },
}

impl Op {
    /// A short name for logs and fault rules: `open`, `fill`, `settle`, `refund`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Open { .. } => "open",
            Op::Fill { .. } => "fill",
            Op::Settle { .. } => "settle",
            Op::Refund { .. } => "refund",
            Op::RefundWithCancel { .. } => "refund_with_cancel",
            Op::Approve { .. } => "approve",
            Op::Transfer { .. } => "transfer",
            Op::Swap { .. } => "swap",
            Op::Call { .. } => "call",
        }
    }

    /// Whether the op's gas depends only on its shape (contract, function, calldata length), so
    /// that an estimate for one such call fits the next: baton's settler, token and pool calls.
    /// Not a fill that runs the user's calls, nor a raw call.
    pub fn stable_gas(&self) -> bool {
        match self {
            Op::Fill { calls, .. } => calls.is_empty(),
            Op::Call { .. } => false,
            _ => true,
        }
    }
}

/// The gas limit an adapter gives a call that is estimated (or seen) to use `gas`: half more and
/// 20,000 (a storage slot another transaction empties or fills first costs up to 20,000 more).
pub fn gas_with_margin(gas: u64) -> u64 {
    gas.saturating_add(gas / 2).saturating_add(20_000)
}

/// Gas and EIP-1559 fee bounds of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fees {
    /// Gas limit.
    pub gas_limit: u64,
    /// Max fee per gas, wei.
    pub max_fee_per_gas: u128,
    /// Priority fee per gas, wei.
    pub max_priority_fee_per_gas: u128,
}

impl Fees {
    /// Bounds for a replacement: both fees raised by 12.5 % (nodes want at least 10 %), and by at
    /// least 1 wei.
    pub fn bumped(self) -> Fees {
        let bump = |fee: u128| fee.saturating_add((fee / 8).max(1));
        Fees {
            gas_limit: self.gas_limit,
            max_fee_per_gas: bump(self.max_fee_per_gas),
            max_priority_fee_per_gas: bump(self.max_priority_fee_per_gas),
        }
    }
}

/// What to sign: an op, its fees, and optionally the nonce to reuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRequest {
    /// What the transaction does.
    pub op: Op,
    /// Its gas and fee bounds.
    pub fees: Fees,
    /// `None`: the account's next nonce. `Some(n)`: replace the transaction that holds nonce `n`
    /// (same op, higher fees); whichever of the two is included, the other can never be.
    pub nonce: Option<u64>,
}

impl TxRequest {
    /// A request for `op` with `fees` at the next nonce.
    pub fn new(op: Op, fees: Fees) -> Self {
        Self {
            op,
            fees,
            nonce: None,
        }
    }
}

/// A signed transaction: what the saga log stores before broadcasting it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The chain.
    pub chain: ChainId,
    /// The sender.
    pub from: Address,
    /// The sender's nonce it uses.
    pub nonce: u64,
    /// The transaction hash.
    pub hash: B256,
    /// The encoded signed transaction, exactly as broadcast (EIP-2718 on EVM chains).
    pub raw: Bytes,
}

/// Where a transaction was included, and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The block.
    pub block: BlockRef,
    /// Whether it succeeded (false: reverted).
    pub success: bool,
    /// Why it reverted, when it did and the chain says (e.g. `DestinationSettler: already filled`).
    pub revert_reason: Option<String>,
    /// Gas used.
    pub gas_used: u64,
    /// Its logs.
    pub logs: Vec<Log>,
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Known to the node, not yet in a block.
    Pending,
    /// In a canonical block.
    Included(Inclusion),
    /// Unknown to the node: never arrived, evicted, or replaced by another with its nonce.
    /// Rebroadcasting the same bytes is safe (a replaced one is then refused).
    Dropped,
    /// Was included in `was`, which is no longer canonical; the transaction is not in a block now.
    ReorgedOut {
        /// The block it was in.
        was: BlockRef,
    },
}

/// A constant-product pool's tokens and reserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserves {
    /// The pool's first token.
    pub token0: Address,
    /// The pool's second token.
    pub token1: Address,
    /// Reserve of `token0`.
    pub reserve0: U256,
    /// Reserve of `token1`.
    pub reserve1: U256,
}

/// An order's escrow on its origin settler (ERC-7683 `OriginSettler.statusOf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscrowStatus {
    /// Never opened here.
    None,
    /// Inputs in escrow.
    Opened,
    /// Paid to the filler.
    Settled,
    /// Returned to the user.
    Refunded,
}

/// Where an event was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAt {
    /// The block.
    pub block: BlockRef,
    /// The transaction.
    pub tx: B256,
}

/// A `Filled` event of the destination settler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillEvidence {
    /// Which output.
    pub output_index: u32,
    /// Who filled.
    pub filler: Address,
    /// The token delivered.
    pub token: Address,
    /// How much.
    pub amount: U256,
    /// To whom.
    pub recipient: Address,
    /// `keccak256(abi.encode(calls))` of the calls the settler ran after the delivery.
    pub calls_hash: B256,
    /// Where.
    pub at: EventAt,
}

/// What one chain's settlers say happened to an order: fills (destination), settlement or refund
/// (origin). The engine judges the intent's outcome from this, never from a receipt alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// `Filled` events, in chain order.
    pub fills: Vec<FillEvidence>,
    /// `Settled(orderId, filler)`.
    pub settled: Option<(Address, EventAt)>,
    /// `Refunded(orderId, user)`.
    pub refunded: Option<(Address, EventAt)>,
}

impl Evidence {
    /// The first fill of output `output_index` to `recipient` of at least `at_least`.
    pub fn fill_of(&self, wanted: &WantedFill) -> Option<FillEvidence> {
        self.fills.iter().copied().find(|f| wanted.matches(f))
    }
}

/// A fill looked for: an output delivered to its recipient, at least some amount of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WantedFill {
    /// Which output of the order.
    pub output_index: u32,
    /// To whom.
    pub recipient: Address,
    /// At least this much.
    pub at_least: U256,
}

impl WantedFill {
    /// Whether `fill` is one.
    pub fn matches(&self, fill: &FillEvidence) -> bool {
        fill.output_index == self.output_index
            && fill.recipient == self.recipient
            && fill.amount >= self.at_least
    }
}

/// What a chain has queued of the adapter's account's transactions, and how fast blocks take them
/// (from a follower).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The account's transactions sent and not yet in a block (one per nonce).
    pub sent: u64,
    /// Transactions promised to admitted intents and not yet sent ([`ChainAdapter::promise`]).
    pub promised: u64,
    /// How many of the account's transactions a block takes: what the blocks' gas limit leaves
    /// beside other senders' use, over the gas the account's transactions reserve.
    pub per_block: u64,
    /// The chain's block time.
    pub block_time_ms: u64,
}

impl Backlog {
    /// How much later than the next block a transaction sent now lands, behind what was sent
    /// before it.
    pub fn sent_wait_ms(&self) -> u64 {
        self.blocks_ms(self.sent)
    }

    /// How much later than the next block the transaction of an intent admitted now lands,
    /// behind what was sent and what was promised before it.
    pub fn wait_ms(&self) -> u64 {
        self.blocks_ms(self.sent.saturating_add(self.promised))
    }

    /// The whole blocks that `ahead` transactions fill, in milliseconds.
    fn blocks_ms(&self, ahead: u64) -> u64 {
        (ahead / self.per_block.max(1)).saturating_mul(self.block_time_ms)
    }
}

/// A transaction of a block as a follower reads it (from the block's receipts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTx {
    /// Its hash.
    pub hash: B256,
    /// Its sender.
    pub from: Address,
    /// Whether it succeeded (false: reverted).
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// Its logs.
    pub logs: Vec<Log>,
}

/// One block as a follower reads it: its header, what its transactions did and the events they
/// emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    /// The block.
    pub block: BlockRef,
    /// Its parent's hash.
    pub parent: B256,
    /// Its timestamp, unix seconds.
    pub timestamp: u64,
    /// Its base fee, wei per gas.
    pub base_fee: u128,
    /// Its gas limit (0: the chain has none).
    pub gas_limit: u64,
    /// Every transaction in it, when the node gives a block's receipts in one call (`None`: only
    /// its logs are known, and a transaction's status is read on its own).
    pub txs: Option<Vec<BlockTx>>,
    /// The block's logs when it came without receipts (with them, each transaction's logs are in
    /// `txs`; see [`ChainBlock::logs`]).
    pub logs: Vec<Log>,
}

impl ChainBlock {
    /// Every log of the block in order, with the transaction that emitted it (the zero hash when
    /// the block came without receipts).
    pub fn logs(&self) -> Box<dyn Iterator<Item = (&Log, B256)> + '_> {
        match &self.txs {
            Some(txs) => Box::new(
                txs.iter()
                    .flat_map(|t| t.logs.iter().map(move |l| (l, t.hash))),
            ),
            None => Box::new(self.logs.iter().map(|l| (l, B256::ZERO))),
        }
    }
}

/// A piece of chain state a follower keeps in its view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKey {
    /// `owner`'s balance of `token`.
    Balance {
        /// The token.
        token: Address,
        /// The holder.
        owner: Address,
    },
    /// How much of `owner`'s `token` `spender` may move.
    Allowance {
        /// The token.
        token: Address,
        /// The holder.
        owner: Address,
        /// Who may spend.
        spender: Address,
    },
    /// A pool's tokens and reserves.
    Reserves {
        /// The pool.
        pool: Address,
    },
    /// Whether `user` used order nonce `nonce` at the chain's origin settler.
    NonceUsed {
        /// The user.
        user: Address,
        /// The nonce.
        nonce: U256,
    },
}

/// The value of a [`StateKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateValue {
    /// A balance or an allowance.
    Amount(U256),
    /// A pool's reserves.
    Reserves(Reserves),
    /// Yes or no (a nonce used).
    Flag(bool),
}

/// An adapter's RPC health so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RpcHealth {
    /// Calls made (each retry counts).
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Mean latency, milliseconds.
    pub latency_ms: u64,
}

/// The port through which everything reaches a chain. Object-safe, `Send + Sync`.
pub trait ChainAdapter: Send + Sync {
    /// The chain's id.
    fn chain_id(&self) -> ChainId;
    /// The account this adapter signs as.
    fn account(&self) -> Address;
    /// Signs `digest` (an EIP-712 signing hash) as the adapter's account: what the account vouches
    /// for off the chain (a request to attesters to cancel an order it opened).
    fn sign_digest(&self, digest: B256) -> Result<alloy::primitives::Signature>;
    /// The latest block.
    fn head(&self) -> BoxFuture<'_, Result<BlockRef>>;
    /// The latest block the chain considers final (cannot be reorged out).
    fn finalized(&self) -> BoxFuture<'_, Result<BlockRef>>;
    /// Base fee, observed block time and RPC health.
    fn conditions(&self) -> BoxFuture<'_, Result<Conditions>>;
    /// The chain's head as its node announces new blocks (a `newHeads` subscription), for an
    /// adapter that has such a feed: the engine then looks at a waiting saga again when a block
    /// arrives instead of at its next poll. The default, `None`: the engine polls.
    fn new_heads(&self) -> Option<tokio::sync::watch::Receiver<BlockRef>> {
        None
    }

    /// `owner`'s balance of `token`.
    fn balance(&self, token: Address, owner: Address) -> BoxFuture<'_, Result<U256>>;
    /// How much of `owner`'s `token` `spender` may move.
    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, Result<U256>>;
    /// A pool's tokens and reserves.
    fn reserves(&self, pool: Address) -> BoxFuture<'_, Result<Reserves>>;
    /// An order's escrow on this chain's origin settler.
    fn escrow(&self, order: OrderId) -> BoxFuture<'_, Result<EscrowStatus>>;
    /// Who opened `order` on this chain's origin settler (the filler that brought the user's
    /// signature), if anyone did.
    fn opener(&self, order: OrderId) -> BoxFuture<'_, Result<Option<Address>>>;
    /// This chain's origin settler's attester set and threshold.
    fn attesters(&self) -> BoxFuture<'_, Result<crate::attestation::AttesterSet>>;
    /// Who filled `output_index` of `order` on this chain's destination settler, if anyone.
    fn filled_by(
        &self,
        order: OrderId,
        output_index: u32,
    ) -> BoxFuture<'_, Result<Option<Address>>>;
    /// Whether `user` has used order nonce `nonce` on this chain's origin settler.
    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, Result<bool>>;
    /// Every order nonce `user` had used on this chain's origin settler by block `at` (from the
    /// settler's `NonceUsed` events), for a follower to answer later nonce checks from blocks.
    /// The default: [`crate::AdapterError::Unsupported`] (the follower asks per nonce instead).
    fn used_nonces(&self, user: Address, at: u64) -> BoxFuture<'_, Result<Vec<U256>>> {
        let _ = (user, at);
        Box::pin(std::future::ready(Err(AdapterError::Unsupported(
            "listing used nonces".into(),
        ))))
    }
    /// The settlers' events about `order` on this chain.
    fn evidence(&self, order: OrderId) -> BoxFuture<'_, Result<Evidence>>;
    /// The destination settler's `Filled` event of `order` that is `wanted`, if the chain has
    /// one. The default looks through [`ChainAdapter::evidence`]; a follower finds it in the
    /// blocks it read first.
    fn fill_of(
        &self,
        order: OrderId,
        wanted: WantedFill,
    ) -> BoxFuture<'_, Result<Option<FillEvidence>>> {
        Box::pin(async move { Ok(self.evidence(order).await?.fill_of(&wanted)) })
    }
    /// The chain's settler contracts, for a follower to tell their events from look-alikes
    /// (`None`: not known, and the follower leaves settler events to the adapter).
    fn settlers(&self) -> Option<crate::abi::Settlers> {
        None
    }

    /// Signs `tx` as the adapter's account, without sending it. With `tx.nonce == None` the
    /// account's next nonce is taken locally, so many can be prepared (and in flight) at once.
    fn prepare(&self, tx: TxRequest) -> BoxFuture<'_, Result<SignedTx>>;
    /// Sends signed bytes. Idempotent: a node that already has them (pending or included) is
    /// success. A node that refuses them (nonce used, fee too low, bad signature) is
    /// [`crate::AdapterError::Rejected`].
    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>>;
    /// The node refused `tx` outright (not for its nonce: it never entered the mempool), and it
    /// will not be sent again: its nonce may be handed out again, so that it does not leave a gap
    /// holding every later transaction of the account. The default does nothing.
    fn release(&self, tx: &SignedTx) {
        let _ = tx;
    }

    /// Sends something harmless (nothing, to itself) with each nonce of the account that was
    /// handed out to a signer that stopped before its transaction was written down, so that the
    /// account's later transactions are not held behind the gap; how many it sent. The default
    /// sends none (a source of nonces of the adapter's own has no holder other than itself).
    fn plug_nonce_gaps(&self) -> BoxFuture<'_, Result<u32>> {
        Box::pin(std::future::ready(Ok(0)))
    }

    /// Block `number` of the canonical chain as the node has it now: header, receipts (or logs),
    /// for a follower ([`crate::follow`]). The default: unsupported (the adapter is not followed).
    fn block(&self, number: u64) -> BoxFuture<'_, Result<ChainBlock>> {
        let _ = number;
        Box::pin(std::future::ready(Err(crate::AdapterError::Unsupported(
            "reading a whole block".into(),
        ))))
    }
    /// `key`'s value as of block `number` (a follower's first read of something it did not
    /// follow). The default: unsupported.
    fn read_at(&self, key: StateKey, number: u64) -> BoxFuture<'_, Result<StateValue>> {
        let _ = (key, number);
        Box::pin(std::future::ready(Err(crate::AdapterError::Unsupported(
            "reading state at a block".into(),
        ))))
    }
    /// Calls made and failed so far, and their mean latency, without a call (zero for an adapter
    /// that does not count them, the default).
    fn rpc_health(&self) -> RpcHealth {
        RpcHealth::default()
    }

    /// The account's queued transactions and the blocks' room for them (a follower knows them;
    /// `None`: not known).
    fn backlog(&self) -> Option<Backlog> {
        None
    }

    /// Counts `txs` more transactions of the account in its backlog until each is sent, or until
    /// `until_ms` (unix milliseconds) passes: what an admitted intent will send, so that intents
    /// admitted together see each other before any of them has sent anything.
    fn promise(&self, txs: u64, until_ms: u64) {
        let _ = (txs, until_ms);
    }
    /// How a follower in front of the chain has been doing (its block, reads answered from its
    /// view or the node, blocks read and rolled back); `None` for an adapter without one (the
    /// default).
    fn follow_stats(&self) -> Option<crate::follow::FollowStats> {
        None
    }

    /// The JSON-RPC requests this adapter sent, by method (each retry counts); empty for an
    /// adapter without RPC (the default).
    fn rpc_calls_by_method(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    /// What became of `tx`; `seen` is the inclusion observed earlier, if any, to detect a reorg.
    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>>;
}
