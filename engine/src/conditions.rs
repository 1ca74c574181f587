//! The chain-conditions cache: each chain's head, base fee and RPC health as last read, shared by
//! every saga driver waiting on that chain, so hundreds of sagas cost a chain a few reads a second.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_adapters::port::{BlockRef, ChainAdapter, Conditions};
use baton_planner::ChainId;

use crate::error::{EngineError, Result};

/// The longest a chain's conditions are reused.
const VIEW_TTL_MAX: Duration = Duration::from_millis(100);

/// A chain's conditions as last read, and how fast its head moves (wall clock).
#[derive(Clone, Copy, Debug)]
struct ChainView {
    conditions: Conditions,
    read: Instant,
    head_moved: Instant,
    per_block: Duration,
}

/// One look at a chain's RPC counters: when, calls made so far, and how many failed.
type Sample = (Instant, u64, u64);

/// The RPC health of a chain over a recent window: how many calls were made in it and what
/// fraction failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Health {
    /// Calls in the window.
    pub(crate) calls: u64,
    /// The fraction of them that failed.
    pub(crate) error_rate: f64,
}

/// Each chain's latest conditions, and the head feeds of the chains that have one.
pub(crate) struct ConditionsCache {
    views: HashMap<ChainId, tokio::sync::Mutex<Option<ChainView>>>,
    /// Each chain's RPC counters as read over the last `window` (and one look before it, the
    /// baseline the window's calls count from).
    samples: HashMap<ChainId, std::sync::Mutex<VecDeque<Sample>>>,
    window: Duration,
    /// The head feed of each chain whose adapter has one ([`ChainAdapter::new_heads`]).
    heads: HashMap<ChainId, tokio::sync::watch::Receiver<BlockRef>>,
}

impl ConditionsCache {
    /// A cache for `chains`, subscribed to the head feed of each that has one, judging RPC health
    /// over the last `window`.
    pub(crate) fn new(chains: &HashMap<ChainId, Arc<dyn ChainAdapter>>, window: Duration) -> Self {
        Self {
            views: chains
                .keys()
                .map(|c| (*c, tokio::sync::Mutex::new(None)))
                .collect(),
            samples: chains
                .keys()
                .map(|c| (*c, std::sync::Mutex::new(VecDeque::new())))
                .collect(),
            window,
            heads: chains
                .iter()
                .filter_map(|(c, a)| Some((*c, a.new_heads()?)))
                .collect(),
        }
    }

    /// The head feed of `chain`, when its adapter has one.
    pub(crate) fn head_feed(
        &self,
        chain: ChainId,
    ) -> Option<&tokio::sync::watch::Receiver<BlockRef>> {
        self.heads.get(&chain)
    }

    /// Notes `chain`'s RPC counters as read at `at`, keeping the window and one look before it.
    fn sample(&self, chain: ChainId, at: Instant, c: &Conditions) {
        let Some(slot) = self.samples.get(&chain) else {
            return;
        };
        let mut samples = slot.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back((at, c.rpc_calls, c.rpc_errors));
        while samples
            .get(1)
            .is_some_and(|(t, ..)| at.duration_since(*t) > self.window)
        {
            samples.pop_front();
        }
    }

    /// `chain`'s RPC health over the recent window (since the last look before it), as the
    /// counters read through this cache show it; `None` before two looks.
    pub(crate) fn health(&self, chain: ChainId) -> Option<Health> {
        let samples = self
            .samples
            .get(&chain)?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (&(_, first_calls, first_errors), &(_, calls, errors)) =
            (samples.front()?, samples.back()?);
        let calls = calls.saturating_sub(first_calls);
        let errors = errors.saturating_sub(first_errors);
        (calls > 0).then(|| Health {
            calls,
            error_rate: errors as f64 / calls as f64,
        })
    }

    /// Each chain's conditions as last read, without reading anything: for figures shown often
    /// (metrics) that must not cost a chain a call each time.
    pub(crate) async fn last(&self) -> Vec<(ChainId, Conditions)> {
        let mut out = Vec::new();
        for (chain, slot) in &self.views {
            if let Some(view) = *slot.lock().await {
                out.push((*chain, view.conditions));
            }
        }
        out.sort_by_key(|(chain, _)| *chain);
        out
    }

    /// `chain`'s conditions through `adapter`, read at most once per a tenth of its (wall-clock)
    /// block interval and 100 ms: hundreds of sagas polling a chain with one-second blocks cost it
    /// ten reads a second, while a chain with millisecond blocks is read every time. Concurrent
    /// callers share one read. A chain whose head feed announced another head than the one read
    /// is read again.
    pub(crate) async fn get(
        &self,
        chain: ChainId,
        adapter: Option<&Arc<dyn ChainAdapter>>,
    ) -> Result<Conditions> {
        let adapter = adapter.ok_or(EngineError::NoAdapter(chain.0))?;
        let Some(slot) = self.views.get(&chain) else {
            return Ok(adapter.conditions().await?);
        };
        let mut view = slot.lock().await;
        if let Some(v) = view.as_ref()
            && v.read.elapsed() < (v.per_block / 10).min(VIEW_TTL_MAX)
            && self
                .heads
                .get(&chain)
                .is_none_or(|feed| *feed.borrow() == v.conditions.head)
        {
            return Ok(v.conditions);
        }
        let conditions = adapter.conditions().await?;
        let now = Instant::now();
        self.sample(chain, now, &conditions);
        *view = Some(match *view {
            Some(old) if old.conditions.head.number == conditions.head.number => ChainView {
                conditions,
                read: now,
                ..old
            },
            Some(old) => {
                let blocks = conditions
                    .head
                    .number
                    .saturating_sub(old.conditions.head.number)
                    .max(1);
                ChainView {
                    conditions,
                    read: now,
                    head_moved: now,
                    per_block: now.duration_since(old.head_moved)
                        / u32::try_from(blocks).unwrap_or(u32::MAX),
                }
            }
            None => ChainView {
                conditions,
                read: now,
                head_moved: now,
                per_block: Duration::ZERO,
            },
        });
        Ok(conditions)
    }
}
