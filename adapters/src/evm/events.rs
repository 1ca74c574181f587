//! Settler events read the way hosted providers allow: from the settlers' deployment block
//! (`logs_from_block`), in ranges of at most `logs_max_range` blocks. Events of blocks deeper than
//! [`REORG_DEPTH`] below the head are read once and kept, indexed by order, with a cursor of how
//! far they were read; the blocks above are read again at every look (a reorg there changes them).

use std::collections::HashMap;

use alloy::primitives::{B256, Log};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use baton_planner::OrderId;

use super::EvmAdapter;
use crate::error::Result;
use crate::port::{BlockRef, EventAt};

/// Blocks below the head after which a block's events are kept as read.
pub(super) const REORG_DEPTH: u64 = 64;

/// Settler events of the blocks read so far, by order.
#[derive(Debug, Default)]
pub(super) struct EventIndex {
    /// The last block whose events are in `by_order`.
    read_to: Option<u64>,
    by_order: HashMap<B256, Vec<(Log, EventAt)>>,
}

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
        let settlers = self.config.settlers;
        let addresses = vec![settlers.origin, settlers.destination];
        let max = self.config.logs_max_range;
        let head = self
            .rpc("reading the head", || self.provider.get_block_number())
            .await?;
        let kept_to = head.saturating_sub(REORG_DEPTH);
        let mut index = self.events.lock().await;
        let from = index.read_to.map_or(self.config.logs_from_block, |b| b + 1);
        for (a, b) in ranges(from, kept_to, max) {
            let filter = Filter::new()
                .address(addresses.clone())
                .from_block(a)
                .to_block(b);
            let logs = self
                .rpc("reading events", || self.provider.get_logs(&filter))
                .await?;
            for log in logs {
                if let Some((order, event)) = located(log) {
                    index.by_order.entry(order).or_default().push(event);
                }
            }
            index.read_to = Some(b);
        }
        let mut out = index.by_order.get(&order.0).cloned().unwrap_or_default();
        let tail_from = index.read_to.map_or(self.config.logs_from_block, |b| b + 1);
        drop(index);
        for (a, b) in ranges(tail_from, head, max) {
            let filter = Filter::new()
                .address(addresses.clone())
                .topic1(order.0)
                .from_block(a)
                .to_block(b);
            let logs = self
                .rpc("reading events", || self.provider.get_logs(&filter))
                .await?;
            out.extend(logs.into_iter().filter_map(located).map(|(_, e)| e));
        }
        Ok(out)
    }
}

/// The order a settler event is about (its first indexed topic), the event and where it was
/// emitted; `None` for a log without them (pending, or not a settler event of an order).
fn located(log: alloy::rpc::types::Log) -> Option<(B256, (Log, EventAt))> {
    let at = EventAt {
        block: BlockRef {
            number: log.block_number?,
            hash: log.block_hash?,
        },
        tx: log.transaction_hash?,
    };
    let order = *log.inner.topics().get(1)?;
    Some((order, (log.inner, at)))
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
