//! Settler events read the way hosted providers allow: from the settlers' deployment block
//! (`logs_from_block`), in ranges of at most `logs_max_range` blocks. Events of blocks deeper than
//! [`REORG_DEPTH`] below the head are read once and kept in an [`EventStore`] (in memory by
//! default; the engine keeps them in its database, so a restarted process does not read them
//! again), with a cursor of how far they were read; the blocks above are read again at every look
//! (a reorg there changes them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use alloy::primitives::{B256, Log};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use baton_planner::OrderId;

use super::EvmAdapter;
use crate::error::{AdapterError, Result};
use crate::port::{BlockRef, BoxFuture, EventAt};

/// A settler event kept: the order it is about, its index in its block, the log and where it was
/// emitted.
pub type KeptEvent = (B256, u64, Log, EventAt);

/// Where an EVM adapter keeps the settler events of blocks it will not read again. `source` names
/// the chain and its settlers (events of other settlers are other events); `store` must ignore an
/// event it already holds (several processes may read one range at once).
pub trait EventStore: Send + Sync {
    /// The last block whose events are kept for `source`.
    fn read_to(&self, source: &str) -> BoxFuture<'_, Result<Option<u64>>>;
    /// Keeps `events`, of blocks up to `to`, and moves the cursor of `source` to `to`, at once.
    fn store(&self, source: &str, to: u64, events: Vec<KeptEvent>) -> BoxFuture<'_, Result<()>>;
    /// The kept events of `order`, oldest first.
    fn events(&self, source: &str, order: B256) -> BoxFuture<'_, Result<Vec<(Log, EventAt)>>>;
}

/// An [`EventStore`] in memory: what one process read, for as long as it runs.
#[derive(Debug, Default)]
pub struct MemoryEvents(Mutex<HashMap<String, EventIndex>>);

/// Settler events of the blocks read so far, by order.
#[derive(Debug, Default)]
struct EventIndex {
    /// The last block whose events are in `by_order`.
    read_to: Option<u64>,
    by_order: HashMap<B256, Vec<(Log, EventAt)>>,
}

impl MemoryEvents {
    fn with<T>(&self, source: &str, f: impl FnOnce(&mut EventIndex) -> T) -> Result<T> {
        let mut all = self
            .0
            .lock()
            .map_err(|_| AdapterError::chain("settler events", "lock poisoned"))?;
        Ok(f(all.entry(source.to_owned()).or_default()))
    }
}

impl EventStore for MemoryEvents {
    fn read_to(&self, source: &str) -> BoxFuture<'_, Result<Option<u64>>> {
        let read_to = self.with(source, |i| i.read_to);
        Box::pin(std::future::ready(read_to))
    }

    fn store(&self, source: &str, to: u64, events: Vec<KeptEvent>) -> BoxFuture<'_, Result<()>> {
        let stored = self.with(source, |index| {
            for (order, _, log, at) in events {
                index.by_order.entry(order).or_default().push((log, at));
            }
            index.read_to = Some(index.read_to.map_or(to, |r| r.max(to)));
        });
        Box::pin(std::future::ready(stored))
    }

    fn events(&self, source: &str, order: B256) -> BoxFuture<'_, Result<Vec<(Log, EventAt)>>> {
        let events = self.with(source, |i| {
            i.by_order.get(&order).cloned().unwrap_or_default()
        });
        Box::pin(std::future::ready(events))
    }
}

/// Blocks below the head after which a block's events are kept as read.
pub(super) const REORG_DEPTH: u64 = 64;

/// Consecutive ranges of at most `max` blocks covering `from..=to` (none when `from > to`).
pub(super) fn ranges(from: u64, to: u64, max: u64) -> impl Iterator<Item = (u64, u64)> {
    let max = max.max(1);
    (from..=to)
        .step_by(usize::try_from(max).unwrap_or(usize::MAX))
        .map(move |a| (a, a.saturating_add(max - 1).min(to)))
}

impl EvmAdapter {
    /// The settler events of `order` (the order id is their first indexed topic), with where each
    /// was emitted, oldest first.
    pub(super) async fn settler_events(&self, order: OrderId) -> Result<Vec<(Log, EventAt)>> {
        self.settler_events_about(order.0).await
    }

    /// The settler events whose first indexed topic is `about` (an order id, or a user's address
    /// for `NonceUsed`), with where each was emitted, oldest first.
    pub(super) async fn settler_events_about(&self, about: B256) -> Result<Vec<(Log, EventAt)>> {
        let settlers = self.config.settlers;
        let addresses = vec![settlers.origin, settlers.destination];
        let head = self
            .rpc("reading the head", || self.provider.get_block_number())
            .await?;
        let kept_to = head.saturating_sub(REORG_DEPTH);
        let source = format!(
            "{}:{}:{}",
            self.config.chain.0, settlers.origin, settlers.destination
        );
        // One reader of the old blocks at a time in this process.
        let reading = self.reading_events.lock().await;
        let read_to = self.event_store.read_to(&source).await?;
        let mut from = read_to.map_or(self.config.logs_from_block, |b| b + 1);
        let all = Filter::new().address(addresses.clone());
        while from <= kept_to {
            let (to, logs) = self.logs_from(&all, from, kept_to).await?;
            let events = logs.into_iter().filter_map(located).collect();
            self.event_store.store(&source, to, events).await?;
            from = to + 1;
        }
        drop(reading);
        let mut out = self.event_store.events(&source, about).await?;
        let of_order = Filter::new().address(addresses).topic1(about);
        while from <= head {
            let (to, logs) = self.logs_from(&of_order, from, head).await?;
            out.extend(
                logs.into_iter()
                    .filter_map(located)
                    .map(|(_, _, log, at)| (log, at)),
            );
            from = to + 1;
        }
        Ok(out)
    }

    /// The logs of `filter` from block `from` on, in one read of at most the endpoint's range (up
    /// to `to`); the last block read. A provider that refuses the range as too wide teaches the
    /// adapter a narrower one: half, until it answers (its limit is not always what was
    /// configured).
    async fn logs_from(
        &self,
        filter: &Filter,
        from: u64,
        to: u64,
    ) -> Result<(u64, Vec<alloy::rpc::types::Log>)> {
        loop {
            let span = self.logs_range.load(Ordering::Relaxed).max(1);
            let (a, b) = ranges(from, to, span).next().unwrap_or((from, from));
            let ranged = filter.clone().from_block(a).to_block(b);
            match self
                .rpc("reading events", || self.provider.get_logs(&ranged))
                .await
            {
                Ok(logs) => return Ok((b, logs)),
                Err(e) if b > a && range_refused(&e) => {
                    self.logs_range
                        .fetch_min((b - a).div_ceil(2), Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether `e` is a provider refusing an `eth_getLogs` for the blocks it spans (`-32005 query
/// exceeds max block range`, "block range is too wide", "range too large", …).
fn range_refused(e: &AdapterError) -> bool {
    too_wide(&e.to_string().to_lowercase())
}

/// Whether a node's (lowercased) message says a block range is too wide.
pub(super) fn too_wide(message: &str) -> bool {
    [
        "block range",
        "range too large",
        "range is too large",
        "too many blocks",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// The order a settler event is about (its first indexed topic), its index in its block, the
/// event and where it was emitted; `None` for a log without them (pending, or not a settler event
/// of an order).
fn located(log: alloy::rpc::types::Log) -> Option<KeptEvent> {
    let at = EventAt {
        block: BlockRef {
            number: log.block_number?,
            hash: log.block_hash?,
        },
        tx: log.transaction_hash?,
    };
    let order = *log.inner.topics().get(1)?;
    Some((order, log.log_index?, log.inner, at))
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn ranges_cover_every_block_once_within_the_cap() {
        let got: Vec<_> = ranges(5, 2_504, 1_000).collect();
        assert_eq!(got, [(5, 1_004), (1_005, 2_004), (2_005, 2_504)]);
        assert_eq!(ranges(7, 6, 1_000).count(), 0);
        assert_eq!(ranges(7, 7, 1_000).collect::<Vec<_>>(), [(7, 7)]);
    }
}
