//! The follower against the sim: after any sequence of transfers, approvals, swaps, blocks and
//! reorgs, every value its view holds equals a fresh read of the chain at the view's block, and
//! the view's block is the chain's head.

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::conformance::FEES;
use baton_adapters::follow::{FollowConfig, Followed};
use baton_adapters::port::{
    BlockRef, BoxFuture, ChainAdapter, ChainBlock, Conditions, EscrowStatus, Evidence, Op,
    Reserves, SignedTx, StateKey, StateValue, TxRequest, TxStatus, WantedFill,
};
use baton_adapters::sim::{SimAdapter, SimChain, SimConfig};
use baton_planner::{ChainId, OrderId};
use proptest::prelude::*;

const ACCOUNTS: usize = 4;

/// A chain with two tokens, one pool, and `ACCOUNTS` funded accounts (account 0 is the
/// follower's), each allowing the pool to pull without limit.
struct World {
    chain: SimChain,
    tokens: [Address; 2],
    pool: Address,
    adapters: Vec<Arc<SimAdapter>>,
    followed: Arc<Followed>,
    /// Every transaction sent, to send again after a reorg (as nodes put a reorged-out
    /// transaction back in their mempool).
    sent: std::sync::Mutex<Vec<(usize, SignedTx)>>,
}

fn signer(i: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(u8::try_from(i).unwrap() + 1)).unwrap()
}

async fn world() -> World {
    let chain = SimChain::new(SimConfig::new(
        ChainId(1),
        baton_adapters::attestation::AttesterSet::default(),
        1_900_000_000,
    ));
    let tokens = [chain.add_token("USDC"), chain.add_token("WETH")];
    let pool = chain.add_pool(
        (tokens[0], U256::from(1_000_000u64)),
        (tokens[1], U256::from(1_000_000u64)),
        30,
    );
    let adapters: Vec<Arc<SimAdapter>> = (0..ACCOUNTS)
        .map(|i| Arc::new(chain.adapter(signer(i))))
        .collect();
    for a in &adapters {
        for token in tokens {
            chain.mint(token, a.account(), U256::from(10_000u64));
        }
    }
    chain.mine(1);
    for a in &adapters {
        for token in tokens {
            send(
                a,
                Op::Approve {
                    token,
                    spender: pool,
                    amount: U256::MAX,
                },
            )
            .await;
        }
    }
    chain.mine(1);
    let followed = Followed::new(adapters[0].clone(), FollowConfig::default());
    World {
        chain,
        tokens,
        pool,
        adapters,
        followed,
        sent: std::sync::Mutex::default(),
    }
}

async fn send(adapter: &SimAdapter, op: Op) -> SignedTx {
    let tx = adapter.prepare(TxRequest::new(op, FEES)).await.unwrap();
    adapter.broadcast(&tx).await.unwrap();
    tx
}

#[derive(Clone, Debug)]
enum Step {
    Transfer {
        from: usize,
        to: usize,
        token: usize,
        amount: u64,
    },
    Approve {
        owner: usize,
        spender: usize,
        token: usize,
        amount: Option<u64>,
    },
    /// `from` pulls from `owner` what `owner` allowed it (a `transferFrom`, as a settler's open).
    Swap {
        by: usize,
        token: usize,
        amount: u64,
    },
    Mine(u64),
    Reorg(u64),
    Read(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0..ACCOUNTS;
    prop_oneof![
        (who.clone(), who.clone(), 0..2usize, 0..3_000u64).prop_map(|(from, to, token, amount)| {
            Step::Transfer {
                from,
                to,
                token,
                amount,
            }
        }),
        // Spender `ACCOUNTS` is the pool: a swap then spends the allowance without an `Approval`.
        (
            who.clone(),
            0..=ACCOUNTS,
            0..2usize,
            proptest::option::of(0..5_000u64)
        )
            .prop_map(|(owner, spender, token, amount)| Step::Approve {
                owner,
                spender,
                token,
                amount
            }),
        (who.clone(), 0..2usize, 1..2_000u64).prop_map(|(by, token, amount)| Step::Swap {
            by,
            token,
            amount
        }),
        (1..3u64).prop_map(Step::Mine),
        (1..4u64).prop_map(Step::Reorg),
        (0..64usize).prop_map(Step::Read),
    ]
}

impl World {
    /// Every key the test may follow.
    fn keys(&self) -> Vec<StateKey> {
        let mut keys = vec![StateKey::Reserves { pool: self.pool }];
        for token in self.tokens {
            for owner in &self.adapters {
                keys.push(StateKey::Balance {
                    token,
                    owner: owner.account(),
                });
                keys.push(StateKey::Balance {
                    token,
                    owner: self.pool,
                });
                for spender in (0..=ACCOUNTS).map(|i| self.spender(i)) {
                    keys.push(StateKey::Allowance {
                        token,
                        owner: owner.account(),
                        spender,
                    });
                }
            }
        }
        keys
    }

    /// Account `i`, or the pool for `ACCOUNTS`.
    fn spender(&self, i: usize) -> Address {
        self.adapters.get(i).map_or(self.pool, |a| a.account())
    }

    async fn send(&self, by: usize, op: Op) {
        let tx = send(&self.adapters[by], op).await;
        self.sent.lock().unwrap().push((by, tx));
    }

    async fn run(&self, step: &Step) {
        let account = |i: usize| self.adapters[i].account();
        match *step {
            Step::Transfer {
                from,
                to,
                token,
                amount,
            } => {
                let op = Op::Transfer {
                    token: self.tokens[token],
                    to: account(to),
                    amount: U256::from(amount),
                };
                self.send(from, op).await;
            }
            Step::Approve {
                owner,
                spender,
                token,
                amount,
            } => {
                let amount = amount.map_or(U256::MAX, U256::from);
                let op = Op::Approve {
                    token: self.tokens[token],
                    spender: self.spender(spender),
                    amount,
                };
                self.send(owner, op).await;
            }
            Step::Swap { by, token, amount } => {
                let op = Op::Swap {
                    pool: self.pool,
                    token_in: self.tokens[token],
                    amount_in: U256::from(amount),
                    min_out: U256::ZERO,
                    to: account(by),
                };
                self.send(by, op).await;
            }
            Step::Mine(n) => self.chain.mine(n),
            Step::Reorg(depth) => {
                // Deeper than the chain: refused, nothing happens.
                let _ = self.chain.reorg(depth);
                let sent = self.sent.lock().unwrap().clone();
                for (by, tx) in sent {
                    // Those still on the chain are refused for their nonce.
                    let _ = self.adapters[by].broadcast(&tx).await;
                }
            }
            Step::Read(i) => {
                let keys = self.keys();
                let key = keys[i % keys.len()];
                match key {
                    StateKey::Balance { token, owner } => {
                        self.followed.balance(token, owner).await.unwrap();
                    }
                    StateKey::Allowance {
                        token,
                        owner,
                        spender,
                    } => {
                        self.followed
                            .allowance(token, owner, spender)
                            .await
                            .unwrap();
                    }
                    StateKey::Reserves { pool } => {
                        self.followed.reserves(pool).await.unwrap();
                    }
                    StateKey::NonceUsed { user, nonce } => {
                        self.followed.nonce_used(user, nonce).await.unwrap();
                    }
                }
            }
        }
    }

    /// The view is at the chain's head and every value it holds is the chain's there.
    async fn check(&self) -> Result<(), TestCaseError> {
        let head = self.adapters[1].head().await.unwrap();
        prop_assert_eq!(self.followed.at(), Some(head));
        for key in self.keys() {
            let held = self.followed.view().get(&key);
            if let Some(held) = held {
                let fresh = self.adapters[1].read_at(key, head.number).await.unwrap();
                prop_assert_eq!(held, fresh, "{:?} at block {}", key, head.number);
            }
        }
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn after_any_blocks_and_reorgs_the_view_equals_the_chain(steps in proptest::collection::vec(step(), 1..60)) {
        runtime().block_on(async {
            let w = world().await;
            w.followed.sync().await.unwrap();
            // Everything followed from the start, so that every step moves something the view holds.
            for i in 0..w.keys().len() {
                w.run(&Step::Read(i)).await;
            }
            for step in &steps {
                w.run(step).await;
                w.followed.sync().await.unwrap();
                w.check().await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

#[tokio::test]
async fn reads_after_the_first_cost_no_call_and_a_transaction_is_found_in_its_block() {
    let w = world().await;
    w.followed.sync().await.unwrap();
    let (token, me) = (w.tokens[0], w.adapters[0].account());
    let before = w.followed.balance(token, me).await.unwrap();
    assert_eq!(w.followed.stats().from_node, 1);
    let signed = send(
        &w.adapters[0],
        Op::Transfer {
            token,
            to: w.adapters[1].account(),
            amount: U256::from(7u64),
        },
    )
    .await;
    // Not in a block yet: pending, without asking the node.
    let calls = w.chain.rpc_calls();
    assert_eq!(
        w.followed.status(&signed, None).await.unwrap(),
        TxStatus::Pending
    );
    assert_eq!(
        w.chain.rpc_calls(),
        calls,
        "a pending transaction was asked of the node"
    );
    w.chain.mine(1);
    w.followed.sync().await.unwrap();
    let calls = w.chain.rpc_calls();
    let after = w.followed.balance(token, me).await.unwrap();
    let status = w.followed.status(&signed, None).await.unwrap();
    assert_eq!(
        w.chain.rpc_calls(),
        calls,
        "a read or a status went to the node"
    );
    assert_eq!(after, before - U256::from(7u64));
    assert!(
        matches!(status, TxStatus::Included(ref i) if i.success && i.block == w.followed.at().unwrap())
    );
    // The block it was in is replaced: the view no longer has it, and says so.
    let TxStatus::Included(inclusion) = status else {
        unreachable!()
    };
    w.chain.reorg(1).unwrap();
    w.followed.sync().await.unwrap();
    assert_eq!(
        w.followed
            .status(&signed, Some(&inclusion.block))
            .await
            .unwrap(),
        TxStatus::ReorgedOut {
            was: inclusion.block
        }
    );
    assert_eq!(w.followed.balance(token, me).await.unwrap(), before);
    assert!(w.followed.stats().rolled_back >= 1);
}

/// `by` allows the destination settler to pull its `token` (to fill with it), in a block the
/// follower has read.
async fn may_fill(w: &World, by: &SimAdapter, token: Address) {
    let destination = w.chain.settlers().destination;
    let approve = Op::Approve {
        token,
        spender: destination,
        amount: U256::MAX,
    };
    send(by, approve).await;
    w.chain.mine(1);
    w.followed.sync().await.unwrap();
}

/// A fill of `order`'s output 0: `amount` of `token` to `recipient`.
fn fill(order: baton_planner::OrderId, token: Address, amount: u64, recipient: Address) -> Op {
    let output = baton_planner::order::Output {
        token: token.into_word(),
        amount: U256::from(amount),
        recipient: recipient.into_word(),
        chainId: U256::from(1u64),
    };
    Op::Fill {
        order_id: order,
        output_index: 0,
        output,
        calls: Vec::new(),
        fill_deadline: u32::MAX,
    }
}

#[tokio::test]
async fn settler_evidence_is_asked_again_only_after_a_block_with_an_event_about_the_order() {
    let w = world().await;
    let solver = &w.adapters[0];
    let token = w.tokens[1];
    may_fill(&w, solver, token).await;
    let order = baton_planner::OrderId(B256::repeat_byte(0x42));
    let recipient = w.adapters[2].account();
    assert!(w.followed.evidence(order).await.unwrap().fills.is_empty());
    // Nothing about the order since: the answer is kept, through blocks without its events.
    w.chain.mine(2);
    w.followed.sync().await.unwrap();
    let calls = w.chain.rpc_calls();
    assert!(w.followed.evidence(order).await.unwrap().fills.is_empty());
    assert_eq!(w.chain.rpc_calls(), calls, "the node was asked again");
    // A fill of the order lands: the next ask goes to the node and finds it.
    send(solver, fill(order, token, 5, recipient)).await;
    w.chain.mine(1);
    w.followed.sync().await.unwrap();
    let fills = w.followed.evidence(order).await.unwrap().fills;
    assert_eq!(fills.len(), 1, "{fills:?}");
    assert_eq!(fills[0].recipient, recipient);
    // Its block is reorged out: the fill is gone from the answer.
    w.chain.reorg(1).unwrap();
    w.followed.sync().await.unwrap();
    assert!(w.followed.evidence(order).await.unwrap().fills.is_empty());
}

#[tokio::test]
async fn a_fill_in_the_blocks_read_is_found_without_a_call_and_its_absence_is_asked_of_the_node() {
    let w = world().await;
    let filler = &w.adapters[1];
    let token = w.tokens[1];
    may_fill(&w, filler, token).await;
    let order = baton_planner::OrderId(B256::repeat_byte(0x43));
    let recipient = w.adapters[2].account();
    let wanted = WantedFill {
        output_index: 0,
        recipient,
        at_least: U256::from(5u64),
    };
    // Not filled: the view's blocks lack it, and that proves nothing, so the node is asked.
    let calls = w.chain.rpc_calls();
    assert_eq!(w.followed.fill_of(order, wanted).await.unwrap(), None);
    assert!(
        w.chain.rpc_calls() > calls,
        "absence was taken from the view"
    );
    // Filled by another account than the follower's: found in the block's events, no call.
    send(filler, fill(order, token, 5, recipient)).await;
    w.chain.mine(1);
    w.followed.sync().await.unwrap();
    let calls = w.chain.rpc_calls();
    let fill = w.followed.fill_of(order, wanted).await.unwrap().unwrap();
    assert_eq!((fill.recipient, fill.amount), (recipient, U256::from(5u64)));
    assert_eq!(fill.filler, filler.account());
    assert_eq!(
        w.chain.rpc_calls(),
        calls,
        "the node was asked for a fill the view holds"
    );
    // More than was delivered, or another output: not this fill.
    let more = WantedFill {
        at_least: U256::from(6u64),
        ..wanted
    };
    assert_eq!(w.followed.fill_of(order, more).await.unwrap(), None);
    // Its block is reorged out: gone from the view, and the node says none.
    w.chain.reorg(1).unwrap();
    w.followed.sync().await.unwrap();
    assert_eq!(w.followed.fill_of(order, wanted).await.unwrap(), None);
}

/// A provider whose every answer takes a turn of the runtime to arrive (as a remote node's
/// does): what the follower asks of it is in flight while other callers ask too.
struct Slow(Arc<SimAdapter>);

type R<T> = baton_adapters::Result<T>;

impl ChainAdapter for Slow {
    fn chain_id(&self) -> ChainId {
        self.0.chain_id()
    }
    fn account(&self) -> Address {
        self.0.account()
    }
    fn head(&self) -> BoxFuture<'_, R<BlockRef>> {
        self.0.head()
    }
    fn finalized(&self) -> BoxFuture<'_, R<BlockRef>> {
        self.0.finalized()
    }
    fn conditions(&self) -> BoxFuture<'_, R<Conditions>> {
        self.0.conditions()
    }
    fn balance(&self, token: Address, owner: Address) -> BoxFuture<'_, R<U256>> {
        self.0.balance(token, owner)
    }
    fn allowance(
        &self,
        token: Address,
        owner: Address,
        spender: Address,
    ) -> BoxFuture<'_, R<U256>> {
        self.0.allowance(token, owner, spender)
    }
    fn reserves(&self, pool: Address) -> BoxFuture<'_, R<Reserves>> {
        self.0.reserves(pool)
    }
    fn escrow(&self, order: OrderId) -> BoxFuture<'_, R<EscrowStatus>> {
        self.0.escrow(order)
    }
    fn sign_digest(&self, digest: B256) -> R<alloy::primitives::Signature> {
        self.0.sign_digest(digest)
    }
    fn opener(&self, order: OrderId) -> BoxFuture<'_, R<Option<Address>>> {
        self.0.opener(order)
    }
    fn attesters(&self) -> BoxFuture<'_, R<baton_adapters::attestation::AttesterSet>> {
        self.0.attesters()
    }
    fn filled_by(&self, order: OrderId, output_index: u32) -> BoxFuture<'_, R<Option<Address>>> {
        self.0.filled_by(order, output_index)
    }
    fn nonce_used(&self, user: Address, nonce: U256) -> BoxFuture<'_, R<bool>> {
        self.0.nonce_used(user, nonce)
    }
    fn used_nonces(&self, user: Address, at: u64) -> BoxFuture<'_, R<Vec<U256>>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.used_nonces(user, at).await
        })
    }
    fn evidence(&self, order: OrderId) -> BoxFuture<'_, R<Evidence>> {
        self.0.evidence(order)
    }
    fn settlers(&self) -> Option<baton_adapters::abi::Settlers> {
        self.0.settlers()
    }
    fn prepare(&self, tx: TxRequest) -> BoxFuture<'_, R<SignedTx>> {
        self.0.prepare(tx)
    }
    fn broadcast<'a>(&'a self, tx: &'a SignedTx) -> BoxFuture<'a, R<()>> {
        self.0.broadcast(tx)
    }
    fn block(&self, number: u64) -> BoxFuture<'_, R<ChainBlock>> {
        self.0.block(number)
    }
    fn read_at(&self, key: StateKey, number: u64) -> BoxFuture<'_, R<StateValue>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.read_at(key, number).await
        })
    }
    fn status<'a>(
        &'a self,
        tx: &'a SignedTx,
        seen: Option<&'a BlockRef>,
    ) -> BoxFuture<'a, R<TxStatus>> {
        self.0.status(tx, seen)
    }
}

#[tokio::test]
async fn callers_that_miss_the_view_on_one_key_at_once_cost_the_node_one_read() {
    let w = world().await;
    let followed = Followed::new(
        Arc::new(Slow(w.adapters[0].clone())),
        FollowConfig::default(),
    );
    followed.sync().await.unwrap();
    let (token, user) = (w.tokens[0], w.adapters[1].account());
    let calls = w.chain.rpc_calls();
    let balances =
        futures_util::future::join_all((0..16).map(|_| followed.balance(token, user))).await;
    let nonces = futures_util::future::join_all(
        (0..16u64).map(|n| followed.nonce_used(user, U256::from(n))),
    )
    .await;
    let held = w.chain.balance(token, user);
    assert!(balances.into_iter().all(|b| b.unwrap() == held));
    assert!(nonces.into_iter().all(|used| !used.unwrap()));
    // One read of the balance at the view's block, one listing of the user's nonces.
    assert_eq!(w.chain.rpc_calls() - calls, 2);
    assert_eq!(followed.stats().from_node, 2);
    assert_eq!(followed.stats().from_view, 30);
}
