//! The EVM adapter on alloy, over JSON-RPC (HTTP).
//!
//! - Signing is local ([`PrivateKeySigner`]); a nonce manager hands out nonces without reading them
//!   back per transaction, so many transactions are in flight per block (pipelining).
//! - Every RPC call waits for the endpoint's rate limit (a `governor` limiter shared by every adapter
//!   on the same URL), times out after [`EvmConfig::timeout`], and is retried with exponential
//!   backoff only when the failure is retryable (timeout, connection failure, HTTP 429/503, a node's
//!   "rate limited" answer). Anything else (a revert, a refused transaction) is returned at once.
//! - A reverted transaction's reason is recovered by replaying it with `eth_call` (against its
//!   parent block, then its own block when the parent says it would succeed, as when an earlier
//!   transaction of the same block caused the revert).
//! - Stuck transactions are replaced by the caller: `prepare` with `TxRequest::nonce = Some(n)` and
//!   [`crate::port::Fees::bumped`].

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::{BlockId, BlockNumberOrTag, Decodable2718};
use alloy::network::{ReceiptResponse, TransactionBuilder};
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use alloy::transports::http::reqwest::{self, Url};
use alloy::transports::{RpcError, TransportError, TransportErrorKind};
use baton_planner::{ChainId, OrderId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

mod counting;
mod events;

pub use counting::MethodCounts;

pub use events::{EventStore, KeptEvent, MemoryEvents};

use crate::abi::{self, Settlers};
use crate::contracts::{DestinationSettler, OriginSettler, Pool, TestToken};
use crate::error::{AdapterError, Refusal, Result};
use crate::nonce::{NonceCounter, NonceSource, Taken};
use crate::port::{
    BlockRef, BlockTx, BoxFuture, ChainAdapter, ChainBlock, Conditions, EscrowStatus, Evidence,
    Inclusion, Reserves, RpcHealth, SignedTx, StateKey, StateValue, TxRequest, TxStatus,
};

/// How an [`EvmAdapter`] reaches its chain.
#[derive(Clone, Debug)]
pub struct EvmConfig {
    /// The chain's id (checked into every signature).
    pub chain: ChainId,
    /// JSON-RPC over HTTP.
    pub rpc_url: Url,
    /// The chain's settler contracts.
    pub settlers: Settlers,
    /// Calls per second allowed to this endpoint, shared by every adapter on the same URL.
    pub requests_per_second: NonZeroU32,
    /// Retries of a retryable failure (so up to `1 + max_retries` attempts).
    pub max_retries: u32,
    /// Backoff before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// Time allowed to one HTTP request.
    pub timeout: Duration,
    /// The first block searched for settler events: the settlers' deployment block (or any
    /// block before it).
    pub logs_from_block: u64,
    /// The most blocks one `eth_getLogs` spans (hosted providers refuse more, e.g. 1,000).
    pub logs_max_range: u64,
}

impl EvmConfig {
    /// Defaults for a local node: 200 calls/s, 4 retries from 50 ms, 10 s timeout.
    pub fn new(chain: ChainId, rpc_url: Url, settlers: Settlers) -> Self {
        Self {
            chain,
            rpc_url,
            settlers,
            requests_per_second: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
            max_retries: 4,
            backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(10),
            logs_from_block: 0,
            logs_max_range: 1_000,
        }
    }
}

/// The limiter of an endpoint, shared by every adapter that uses the same URL.
fn limiter(url: &Url, per_second: NonZeroU32) -> Arc<DefaultDirectRateLimiter> {
    static LIMITERS: OnceLock<Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>> =
        OnceLock::new();
    let mut map = LIMITERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(url.to_string())
        .or_insert_with(|| Arc::new(RateLimiter::direct(Quota::per_second(per_second))))
        .clone()
}

/// Whether a failure is worth retrying: the request may not have been served.
fn retryable(e: &TransportError) -> bool {
    match e {
        // Timed out, refused, or dropped before the answer came (every call the adapter makes is
        // a read or the broadcast of bytes already signed: sending it again does nothing twice).
        RpcError::Transport(TransportErrorKind::Custom(inner)) => inner
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_timeout() || r.is_connect() || r.is_request()),
        RpcError::Transport(kind) => kind.is_retry_err(),
        // -32005 is also how providers refuse an `eth_getLogs` range: asking again will not help.
        RpcError::ErrorResp(payload) => {
            payload.is_retry_err() && !events::too_wide(&payload.message.to_lowercase())
        }
        _ => false,
    }
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long the endpoint asked to wait, with a 429 or 503 and a `Retry-After` header.
fn retry_after(e: &TransportError) -> Option<Duration> {
    match e {
        RpcError::Transport(kind) => kind.retry_after(),
        _ => None,
    }
}

/// Errors that may carry a transport error.
trait Transported: std::fmt::Display {
    fn transport(&self) -> Option<&TransportError>;
}

impl Transported for TransportError {
    fn transport(&self) -> Option<&TransportError> {
        Some(self)
    }
}

impl Transported for alloy::contract::Error {
    fn transport(&self) -> Option<&TransportError> {
        match self {
            alloy::contract::Error::TransportError(e) => Some(e),
            _ => None,
        }
    }
}

/// An EVM chain reached over JSON-RPC, acting as one account.
pub struct EvmAdapter {
    config: EvmConfig,
    provider: DynProvider,
    signer: PrivateKeySigner,
    limiter: Arc<DefaultDirectRateLimiter>,
    nonces: Arc<dyn NonceSource>,
    calls: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
    /// Requests sent, by JSON-RPC method (each retry counts).
    methods: Arc<MethodCounts>,
    /// Until when (milliseconds since `born`) the endpoint asked not to be called.
    hold_ms: AtomicU64,
    born: Instant,
    event_store: Arc<dyn EventStore>,
    /// Held while the old blocks' events are read (one reader at a time).
    reading_events: tokio::sync::Mutex<()>,
    /// The most blocks one `eth_getLogs` spans: the configured cap, narrowed when the provider
    /// refuses it.
    logs_range: AtomicU64,
    /// Whether the node answers `eth_getBlockReceipts` (until it refuses it once).
    block_receipts: AtomicBool,
    /// The node's last gas estimate per call shape, reused for calls of the same shape.
    gas_kept: Mutex<HashMap<CallShape, KeptGas>>,
    /// One estimate per shape at a time: calls prepared at once wait for the first one's.
    gas_asking: Mutex<HashMap<CallShape, Arc<tokio::sync::Mutex<()>>>>,
}

/// Calls whose gas depends on their contract, function and calldata length only (baton's own
/// settler, token and pool calls; not a fill running the user's calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CallShape {
    to: Address,
    selector: [u8; 4],
    len: usize,
}

/// An estimate kept for a [`CallShape`].
#[derive(Clone, Copy, Debug)]
struct KeptGas {
    estimate: u64,
    uses: u32,
    at: Instant,
}

/// How many calls of one shape reuse an estimate before the node is asked again.
const GAS_KEPT_USES: u32 = 64;
/// How long an estimate is reused at most.
const GAS_KEPT_FOR: Duration = Duration::from_secs(60);

impl EvmAdapter {
    /// Connects as `signer` with `config`.
    pub fn new(config: EvmConfig, signer: PrivateKeySigner) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| AdapterError::chain("building the HTTP client", e))?;
        let methods = Arc::new(MethodCounts::default());
        let client = alloy::rpc::client::ClientBuilder::default()
            .layer(counting::CountLayer(methods.clone()))
            .http_with_client(http, config.rpc_url.clone());
        let logs_range = config.logs_max_range.max(1);
        Ok(Self {
            provider: ProviderBuilder::new().connect_client(client).erased(),
            limiter: limiter(&config.rpc_url, config.requests_per_second),
            config,
            signer,
            nonces: Arc::new(NonceCounter::default()),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            methods,
            hold_ms: AtomicU64::new(0),
            born: Instant::now(),
            event_store: Arc::new(MemoryEvents::default()),
            reading_events: tokio::sync::Mutex::new(()),
            logs_range: AtomicU64::new(logs_range),
            block_receipts: AtomicBool::new(true),
            gas_kept: Mutex::new(HashMap::new()),
            gas_asking: Mutex::new(HashMap::new()),
        })
    }

    /// The gas limit of `call`: the node's estimate against the latest block (not the pending one:
    /// a replacement must not be estimated on the state of the transaction it replaces) with half
    /// more and 20,000 as margin (a storage slot another transaction empties or fills first costs
    /// up to 20,000 more), at most `cap` (the op's bound); `cap` itself when the node cannot
    /// estimate it (it would revert now: it is sent anyway, and its revert is recorded).
    ///
    /// With `stable` (the op's gas depends on its shape only, [`crate::port::Op::stable_gas`]),
    /// the estimate of an earlier call of the same contract, function and calldata length is
    /// reused, for up to [`GAS_KEPT_USES`] calls and [`GAS_KEPT_FOR`]: the margin covers what
    /// differs between them (a first or last storage write).
    async fn gas_for(&self, call: &abi::EvmCall, cap: u64, stable: bool) -> u64 {
        let margin = |estimate: u64| crate::port::gas_with_margin(estimate).min(cap);
        let shape = (stable && call.value.is_zero())
            .then(|| {
                let selector: [u8; 4] = call.data.get(..4)?.try_into().ok()?;
                Some(CallShape {
                    to: call.to,
                    selector,
                    len: call.data.len(),
                })
            })
            .flatten();
        let asking = shape.map(|shape| {
            self.gas_asking
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(shape)
                .or_default()
                .clone()
        });
        let _asking = match &asking {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        if let Some(shape) = shape
            && let Some(kept) = self.kept_gas(shape)
        {
            return margin(kept);
        }
        let request = TransactionRequest::default()
            .from(self.signer.address())
            .to(call.to)
            .value(call.value)
            .input(call.data.clone().into());
        match self
            .rpc("estimating gas", || {
                self.provider
                    .estimate_gas(request.clone())
                    .block(BlockId::latest())
            })
            .await
        {
            Ok(estimate) => {
                if let Some(shape) = shape {
                    let kept = KeptGas {
                        estimate,
                        uses: 0,
                        at: Instant::now(),
                    };
                    self.gas_kept
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(shape, kept);
                }
                margin(estimate)
            }
            Err(_) => cap,
        }
    }

    /// The estimate kept for `shape`, counting this use; none when there is none or it is spent.
    fn kept_gas(&self, shape: CallShape) -> Option<u64> {
        let mut kept = self
            .gas_kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = kept.get_mut(&shape)?;
        if k.uses >= GAS_KEPT_USES || k.at.elapsed() > GAS_KEPT_FOR {
            kept.remove(&shape);
            return None;
        }
        k.uses += 1;
        Some(k.estimate)
    }

    /// Runs one RPC call under the endpoint's rate limit, retrying retryable failures with
    /// backoff; counts every attempt, failure and latency for [`ChainAdapter::conditions`].
    async fn rpc<T, E, F>(&self, what: &str, call: impl Fn() -> F) -> Result<T>
    where
        E: Transported,
        F: std::future::IntoFuture<Output = std::result::Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            self.held().await;
            self.allowed().await;
            let start = Instant::now();
            let result = call().await;
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.latency_us.fetch_add(us, Ordering::Relaxed);
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // A node's error answer (a revert, a refusal) is a healthy RPC; count the rest.
                    if !matches!(e.transport(), Some(RpcError::ErrorResp(_))) {
                        self.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let again = e.transport().is_some_and(retryable);
                    if !again || attempt >= self.config.max_retries {
                        return Err(match e.transport() {
                            Some(RpcError::ErrorResp(p)) => AdapterError::refused(
                                what,
                                Refusal::from_node_message(&p.message),
                                &p.message,
                            ),
                            _ => AdapterError::chain(what, e),
                        });
                    }
                    let mut wait = self.config.backoff * 2u32.saturating_pow(attempt);
                    // A provider's `Retry-After` (with a 429 or 503) holds every call to this
                    // endpoint, not only this one, for as long as it asks (up to a minute).
                    if let Some(after) = e.transport().and_then(retry_after) {
                        let after = after.min(MAX_RETRY_AFTER);
                        self.hold_until(after);
                        wait = wait.max(after);
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Holds every call to the endpoint for `after` from now.
    fn hold_until(&self, after: Duration) {
        let until = self.born.elapsed().saturating_add(after).as_millis();
        self.hold_ms
            .fetch_max(u64::try_from(until).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Waits until the endpoint's rate limit allows a call, on the runtime's timer (governor's
    /// `until_ready` wakes every waiter through a timer thread of its own).
    async fn allowed(&self) {
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(DefaultClock::default().now())).await;
        }
    }

    /// Waits while the endpoint asked not to be called.
    async fn held(&self) {
        let until = Duration::from_millis(self.hold_ms.load(Ordering::Relaxed));
        if let Some(left) = until.checked_sub(self.born.elapsed()) {
            tokio::time::sleep(left).await;
        }
    }

    /// A block's number and hash, timestamp and base fee.
    async fn block(&self, at: BlockNumberOrTag) -> Result<(BlockRef, u64, u128)> {
        let block = self
            .rpc("reading a block", || self.provider.get_block_by_number(at))
            .await?
            .ok_or_else(|| AdapterError::chain("reading a block", format!("no block {at}")))?;
        Ok((
            BlockRef {
                number: block.header.number,
                hash: block.header.hash,
            },
            block.header.timestamp,
            block.header.base_fee_per_gas.map_or(0, u128::from),
        ))
    }

    /// `owner`'s balance of `token` at `at`.
    async fn balance_at(&self, token: Address, owner: Address, at: BlockId) -> Result<U256> {
        let token = TestToken::new(token, &self.provider);
        self.rpc("reading a balance", || async {
            token.balanceOf(owner).block(at).call().await
        })
        .await
    }

    /// How much of `owner`'s `token` `spender` may move at `at`.
    async fn allowance_at(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
        at: BlockId,
    ) -> Result<U256> {
        let token = TestToken::new(token, &self.provider);
        self.rpc("reading an allowance", || async {
            token.allowance(owner, spender).block(at).call().await
        })
        .await
    }

    /// A pool's tokens and reserves at `at`.
    async fn reserves_at(&self, pool: Address, at: BlockId) -> Result<Reserves> {
        let p = Pool::new(pool, &self.provider);
        let token0 = self
            .rpc("reading a pool", || async {
                p.token0().block(at).call().await
            })
            .await?;
        let token1 = self
            .rpc("reading a pool", || async {
                p.token1().block(at).call().await
            })
            .await?;
        let r = self
            .rpc("reading reserves", || async {
                p.getReserves().block(at).call().await
            })
            .await?;
        Ok(Reserves {
            token0,
            token1,
            reserve0: r._0,
            reserve1: r._1,
        })
    }

    /// The transactions of block `hash` from its receipts, when the node answers
    /// `eth_getBlockReceipts` (`None` once it refused it).
    async fn block_txs(&self, hash: alloy::primitives::B256) -> Result<Option<Vec<BlockTx>>> {
        if !self.block_receipts.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let what = "reading a block's receipts";
        let receipts = match self
            .rpc(what, || {
                self.provider.get_block_receipts(BlockId::hash(hash))
            })
            .await
        {
            Ok(receipts) => receipts.ok_or_else(|| {
                AdapterError::chain(what, format!("the node has no block {hash}"))
            })?,
            Err(e @ AdapterError::Rejected { .. }) => {
                tracing::warn!(chain = %self.config.chain, error = %e, "the node does not give a block's receipts: reading logs per block and receipts per transaction instead");
                self.block_receipts.store(false, Ordering::Relaxed);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(Some(
            receipts
                .iter()
                .map(|r| BlockTx {
                    hash: r.transaction_hash,
                    from: r.from,
                    success: r.status(),
                    gas_used: r.gas_used,
                    logs: r.inner.logs().iter().map(|l| l.inner.clone()).collect(),
                })
                .collect(),
        ))
    }

    /// Takes nonces from `source` instead of a counter of its own: several processes signing
    /// with one key on one chain share one source, so that no two of them sign with one nonce.
    #[must_use]
    pub fn with_nonces(mut self, source: Arc<dyn NonceSource>) -> Self {
        self.nonces = source;
        self
    }

    /// Keeps the settler events of old blocks in `store` instead of in memory: a process started
    /// again with the same store does not read them again.
    #[must_use]
    pub fn with_events(mut self, store: Arc<dyn EventStore>) -> Self {
        self.event_store = store;
        self
    }

    /// The node's pending transaction count of the signer.
    async fn pending_nonce(&self) -> Result<u64> {
        self.rpc("reading the nonce", || {
            self.provider
                .get_transaction_count(self.signer.address())
                .pending()
        })
        .await
    }

    /// The next nonce from the source, with the node's pending count when the source asks for it
    /// (the first time, and whenever a nonce was given back, to skip it if the chain used it
    /// meanwhile).
    async fn take_nonce(&self) -> Result<u64> {
        let (chain, me) = (self.config.chain, self.signer.address());
        let taken = match self.nonces.take(chain, me, None).await? {
            Taken::AskChain => {
                let pending = self.pending_nonce().await?;
                self.nonces.take(chain, me, Some(pending)).await?
            }
            taken => taken,
        };
        match taken {
            Taken::Nonce(n) => Ok(n),
            Taken::AskChain => Err(AdapterError::chain(
                "taking a nonce",
                "the nonce source asked for the chain's count again",
            )),
        }
    }

    /// Why `tx`, included and reverted in block `number`, reverted: replayed with `eth_call`.
    async fn revert_reason(&self, tx: &SignedTx, number: u64) -> Option<String> {
        let envelope = TxEnvelope::decode_2718(&mut tx.raw.as_ref()).ok()?;
        let request = TransactionRequest::default()
            .with_from(tx.from)
            .with_to(envelope.to()?)
            .with_input(envelope.input().clone())
            .with_value(envelope.value())
            .with_gas_limit(envelope.gas_limit());
        for at in [number.saturating_sub(1), number] {
            // A replay's error is its answer, so it bypasses `rpc` (no retries) but not the limit.
            self.allowed().await;
            let replay = self
                .provider
                .call(request.clone())
                .block(BlockId::number(at))
                .await;
            if let Err(e) = replay {
                let reason = e
                    .as_error_resp()
                    .and_then(|p| p.as_revert_data())
                    .and_then(|data| alloy::sol_types::decode_revert_reason(&data))
                    .or_else(|| e.as_error_resp().map(|p| p.message.to_string()))
                    .unwrap_or_else(|| e.to_string());
                return Some(reason);
            }
        }
        None
    }
}

impl ChainAdapter for EvmAdapter {
    fn chain_id(&self) -> ChainId {
        self.config.chain
    }

    fn account(&self) -> Address {
        self.signer.address()
    }

    fn head(&self) -> BoxFuture<'_, Result<BlockRef>> {
        Box::pin(async move { Ok(self.block(BlockNumberOrTag::Latest).await?.0) })
    }

    fn finalized(&self) -> BoxFuture<'_, Result<BlockRef>> {
        Box::pin(async move { Ok(self.block(BlockNumberOrTag::Finalized).await?.0) })
    }

    fn conditions(&self) -> BoxFuture<'_, Result<Conditions>> {
        Box::pin(async move {
            let (head, now, base_fee) = self.block(BlockNumberOrTag::Latest).await?;
            let span = head.number.min(Conditions::BLOCK_TIME_WINDOW);
            let then = if span == 0 {
                now
            } else {
                self.block(BlockNumberOrTag::Number(head.number - span))
                    .await?
                    .1
            };
            let block_time_ms = Conditions::mean_block_time_ms(span, then, now);
            let health = self.rpc_health();
            Ok(Conditions {
                head,
                timestamp: now,
                base_fee,
                block_time_ms,
                rpc_calls: health.calls,
                rpc_errors: health.errors,
                rpc_latency_ms: health.latency_ms,
            })
        })
    }

    fn balance(&self, token: Address, owner: Address) -> BoxFuture<'_, Result<U256>> {
        Box::pin(self.balance_at(token, owner, BlockId::latest()))
    }

    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, Result<U256>> {
        Box::pin(self.allowance_at(token, owner, spender, BlockId::latest()))
    }

    fn reserves(&self, pool: Address) -> BoxFuture<'_, Result<Reserves>> {
        Box::pin(self.reserves_at(pool, BlockId::latest()))
    }

    fn block(&self, number: u64) -> BoxFuture<'_, Result<ChainBlock>> {
        Box::pin(async move {
            let what = "reading a block";
            let b = self
                .rpc(what, || {
                    self.provider
                        .get_block_by_number(BlockNumberOrTag::Number(number))
                })
                .await?
                .ok_or_else(|| AdapterError::chain(what, format!("no block {number} yet")))?;
            let block = BlockRef {
                number: b.header.number,
                hash: b.header.hash,
            };
            let txs = self.block_txs(block.hash).await?;
            let logs = match &txs {
                Some(_) => Vec::new(),
                None => {
                    let filter = alloy::rpc::types::Filter::new().at_block_hash(block.hash);
                    self.rpc("reading a block's logs", || self.provider.get_logs(&filter))
                        .await?
                        .into_iter()
                        .map(|l| l.inner)
                        .collect()
                }
            };
            Ok(ChainBlock {
                block,
                parent: b.header.parent_hash,
                timestamp: b.header.timestamp,
                base_fee: b.header.base_fee_per_gas.map_or(0, u128::from),
                gas_limit: b.header.gas_limit,
                txs,
                logs,
            })
        })
    }

    fn read_at(&self, key: StateKey, number: u64) -> BoxFuture<'_, Result<StateValue>> {
        Box::pin(async move {
            let at = BlockId::number(number);
            Ok(match key {
                StateKey::Balance { token, owner } => {
                    StateValue::Amount(self.balance_at(token, owner, at).await?)
                }
                StateKey::Allowance {
                    token,
                    owner,
                    spender,
                } => StateValue::Amount(self.allowance_at(token, owner, spender, at).await?),
                StateKey::Reserves { pool } => {
                    StateValue::Reserves(self.reserves_at(pool, at).await?)
                }
                StateKey::NonceUsed { user, nonce } => {
                    let s = OriginSettler::new(self.config.settlers.origin, &self.provider);
                    StateValue::Flag(
                        self.rpc("reading a nonce", || async {
                            s.nonceUsed(user, nonce).block(at).call().await
                        })
                        .await?,
                    )
                }
            })
        })
    }

    fn rpc_health(&self) -> RpcHealth {
        let calls = self.calls.load(Ordering::Relaxed);
        RpcHealth {
            calls,
            errors: self.errors.load(Ordering::Relaxed),
            latency_ms: self.latency_us.load(Ordering::Relaxed) / calls.max(1) / 1000,
        }
    }

    fn escrow(&self, order: OrderId) -> BoxFuture<'_, Result<EscrowStatus>> {
        Box::pin(async move {
            let s = OriginSettler::new(self.config.settlers.origin, &self.provider);
            let status = self
                .rpc("reading an escrow", || async {
                    s.statusOf(order.0).call().await
                })
                .await?;
            Ok(match status {
                0 => EscrowStatus::None,
                1 => EscrowStatus::Opened,
                2 => EscrowStatus::Settled,
                _ => EscrowStatus::Refunded,
            })
        })
    }

    fn sign_digest(&self, digest: alloy::primitives::B256) -> Result<alloy::primitives::Signature> {
        abi::sign_hash(&self.signer, digest)
    }

    fn opener(&self, order: OrderId) -> BoxFuture<'_, Result<Option<Address>>> {
        Box::pin(async move {
            let s = OriginSettler::new(self.config.settlers.origin, &self.provider);
            let opener = self
                .rpc("reading an opener", || async {
                    s.openerOf(order.0).call().await
                })
                .await?;
            Ok((opener != Address::ZERO).then_some(opener))
        })
    }

    fn attesters(&self) -> BoxFuture<'_, Result<crate::attestation::AttesterSet>> {
        Box::pin(async move {
            let s = OriginSettler::new(self.config.settlers.origin, &self.provider);
            let set = self
                .rpc("reading the attester set", || async {
                    s.attesters().call().await
                })
                .await?;
            Ok(crate::attestation::AttesterSet {
                members: set._0,
                threshold: usize::try_from(set._1).unwrap_or(usize::MAX),
            })
        })
    }

    fn filled_by(
        &self,
        order: OrderId,
        output_index: u32,
    ) -> BoxFuture<'_, Result<Option<Address>>> {
        Box::pin(async move {
            let s = DestinationSettler::new(self.config.settlers.destination, &self.provider);
            let key = abi::fill_key(order.0, output_index);
            let filler = self
                .rpc("reading a fill", || async { s.filledBy(key).call().await })
                .await?;
            Ok((filler != Address::ZERO).then_some(filler))
        })
    }

    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let s = OriginSettler::new(self.config.settlers.origin, &self.provider);
            self.rpc("reading a nonce", || async {
                s.nonceUsed(user, nonce).call().await
            })
            .await
        })
    }

    fn used_nonces(&self, user: Address, at: u64) -> BoxFuture<'_, Result<Vec<U256>>> {
        Box::pin(async move {
            let origin = self.config.settlers.origin;
            let events = self.settler_events_about(user.into_word()).await?;
            Ok(events
                .iter()
                .filter(|(log, event)| log.address == origin && event.block.number <= at)
                .filter_map(|(log, _)| OriginSettler::NonceUsed::decode_log(log).ok())
                .filter(|e| e.user == user)
                .map(|e| e.nonce)
                .collect())
        })
    }

    fn evidence(&self, order: OrderId) -> BoxFuture<'_, Result<Evidence>> {
        Box::pin(async move {
            let logs = self.settler_events(order).await?;
            let located = logs.iter().map(|(log, at)| (log, *at));
            Ok(abi::evidence(order, &self.config.settlers, located))
        })
    }

    fn settlers(&self) -> Option<Settlers> {
        Some(self.config.settlers)
    }

    fn prepare(&self, tx: TxRequest) -> BoxFuture<'_, Result<SignedTx>> {
        Box::pin(async move {
            let nonce = match tx.nonce {
                Some(n) => n,
                None => self.take_nonce().await?,
            };
            let call = abi::encode(&tx.op, &self.config.settlers);
            let mut fees = tx.fees;
            fees.gas_limit = self
                .gas_for(&call, fees.gas_limit, tx.op.stable_gas())
                .await;
            abi::sign(&self.signer, self.config.chain, nonce, call, &fees)
        })
    }

    fn release(&self, tx: &SignedTx) {
        if tx.from == self.signer.address() {
            // Best effort, in the background: a nonce never given back is found abandoned later.
            let (nonces, chain, from, nonce) = (self.nonces.clone(), tx.chain, tx.from, tx.nonce);
            let release = async move { nonces.release(chain, from, nonce).await };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                drop(runtime.spawn(release));
            }
        }
    }

    fn rpc_calls_by_method(&self) -> Vec<(String, u64)> {
        self.methods.snapshot()
    }

    fn plug_nonce_gaps(&self) -> BoxFuture<'_, Result<u32>> {
        Box::pin(async move {
            let (chain, me) = (self.config.chain, self.signer.address());
            let mut plugged = 0;
            // A few per call: each is a transaction; the next look finds any left.
            while plugged < 16 && self.nonces.has_abandoned(chain, me).await? {
                let pending = self.pending_nonce().await?;
                let Some(nonce) = self.nonces.abandoned(chain, me, pending).await? else {
                    break;
                };
                let (_, _, base_fee) = self.block(BlockNumberOrTag::Latest).await?;
                let tip = 1_000_000_000u128;
                let fees = crate::port::Fees {
                    gas_limit: 21_000,
                    max_fee_per_gas: base_fee.saturating_mul(2).saturating_add(tip),
                    max_priority_fee_per_gas: tip,
                };
                // Nothing to itself: the nonce is used, and every later transaction can land.
                let noop = abi::EvmCall {
                    to: me,
                    data: Default::default(),
                    value: U256::ZERO,
                };
                let tx = abi::sign(&self.signer, chain, nonce, noop, &fees)?;
                self.broadcast(&tx).await?;
                plugged += 1;
            }
            Ok(plugged)
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let sent = self
                .rpc("broadcasting", || async {
                    self.provider
                        .send_raw_transaction(&tx.raw)
                        .await
                        .map(|_| ())
                })
                .await;
            match sent {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Already pending, or already included: the same bytes cannot do anything twice.
                    let known = self
                        .rpc("reading a transaction", || {
                            self.provider.get_transaction_by_hash(tx.hash)
                        })
                        .await
                        .ok()
                        .flatten()
                        .is_some();
                    if known { Ok(()) } else { Err(e) }
                }
            }
        })
    }

    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, Result<TxStatus>> {
        Box::pin(async move {
            let receipt = self
                .rpc("reading a receipt", || {
                    self.provider.get_transaction_receipt(tx.hash)
                })
                .await?;
            if let Some(r) = receipt {
                let (Some(number), Some(hash)) = (r.block_number(), r.block_hash()) else {
                    return Ok(TxStatus::Pending);
                };
                let success = r.status();
                let revert_reason = if success {
                    None
                } else {
                    self.revert_reason(tx, number).await
                };
                // When `seen` differs, the transaction was re-included after a reorg: the new block
                // is the one that counts, and its confirmations start again.
                return Ok(TxStatus::Included(Inclusion {
                    block: BlockRef { number, hash },
                    success,
                    revert_reason,
                    gas_used: r.gas_used(),
                    logs: r.inner.logs().iter().map(|l| l.inner.clone()).collect(),
                }));
            }
            let pending = self
                .rpc("reading a transaction", || {
                    self.provider.get_transaction_by_hash(tx.hash)
                })
                .await?
                .is_some();
            Ok(match (pending, seen) {
                (_, Some(was)) => TxStatus::ReorgedOut { was: *was },
                (true, None) => TxStatus::Pending,
                (false, None) => TxStatus::Dropped,
            })
        })
    }
}
