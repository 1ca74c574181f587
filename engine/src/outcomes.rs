//! Outcomes over time, as the operators' console charts them: how many sagas were fulfilled,
//! refunded or failed in each interval of a window, and each route's time to outcome (p50, p99).

use std::collections::BTreeMap;

use crate::log::Decided;

/// Outcomes decided in one interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Fulfilled.
    pub fulfilled: u64,
    /// Refunded.
    pub refunded: u64,
    /// Failed.
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, outcome: &str) {
        match outcome {
            "fulfilled" => self.fulfilled += 1,
            "refunded" => self.refunded += 1,
            _ => self.failed += 1,
        }
    }
}

/// One route's outcomes over the window.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteOutcomes {
    /// The route (`31337>31338`; `unknown` for sagas admitted before routes were kept).
    pub route: String,
    /// Its outcomes.
    pub counts: Counts,
    /// The median time from admission to outcome, seconds (nearest rank).
    pub p50_secs: f64,
    /// The 99th percentile of that time, seconds (nearest rank).
    pub p99_secs: f64,
}

/// Outcomes over a window: per interval, and per route.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The window's start, unix milliseconds (a multiple of `bucket_ms`).
    pub since_ms: i64,
    /// Each interval's length, milliseconds.
    pub bucket_ms: i64,
    /// Every interval from `since_ms` to now, oldest first, empty ones included.
    pub buckets: Vec<Counts>,
    /// Every route with an outcome in the window, by name.
    pub routes: Vec<RouteOutcomes>,
}

/// The series of `decided` (sagas decided from `since_ms` on) in intervals of `bucket_ms` up to
/// `now_ms`. The window starts at `since_ms` rounded down to an interval, so that a chart's bars
/// stay put as time passes.
pub fn series(decided: &[Decided], since_ms: i64, now_ms: i64, bucket_ms: i64) -> Series {
    let bucket_ms = bucket_ms.max(1);
    let start = since_ms.div_euclid(bucket_ms) * bucket_ms;
    let intervals = ((now_ms - start).max(0) / bucket_ms + 1) as usize;
    let mut buckets = vec![Counts::default(); intervals];
    let mut by_route: BTreeMap<&str, (Counts, Vec<i64>)> = BTreeMap::new();
    for d in decided {
        if d.decided_ms < start {
            continue;
        }
        let i = ((d.decided_ms - start) / bucket_ms) as usize;
        if let Some(b) = buckets.get_mut(i) {
            b.add(&d.outcome);
        }
        let route = by_route
            .entry(d.route.as_deref().unwrap_or("unknown"))
            .or_default();
        route.0.add(&d.outcome);
        route.1.push((d.decided_ms - d.created_ms).max(0));
    }
    let routes = by_route
        .into_iter()
        .map(|(route, (counts, mut times))| {
            times.sort_unstable();
            RouteOutcomes {
                route: route.to_owned(),
                counts,
                p50_secs: nearest_rank(&times, 50) as f64 / 1_000.0,
                p99_secs: nearest_rank(&times, 99) as f64 / 1_000.0,
            }
        })
        .collect();
    Series {
        since_ms: start,
        bucket_ms,
        buckets,
        routes,
    }
}

/// The `p`th percentile of `sorted` by nearest rank (the smallest value with at least p% of the
/// values at or below it); 0 for none.
fn nearest_rank(sorted: &[i64], p: usize) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(route: &str, outcome: &str, created_ms: i64, decided_ms: i64) -> Decided {
        Decided {
            route: Some(route.into()),
            outcome: outcome.into(),
            created_ms,
            decided_ms,
        }
    }

    #[test]
    fn outcomes_fall_in_their_interval_and_routes_get_their_percentiles() {
        let rows = [
            decided("1>2", "fulfilled", 0, 10_000),
            decided("1>2", "refunded", 5_000, 65_000),
            decided("2>1", "failed", 60_000, 125_000),
            decided("1>2", "fulfilled", 100_000, 102_000),
        ];
        let s = series(&rows, 30_000, 150_000, 60_000);
        // The window starts at the interval holding 30 s; the decision at 10 s is before it.
        assert_eq!(s.since_ms, 0);
        assert_eq!(s.buckets.len(), 3);
        let counts = |f, r, x| Counts {
            fulfilled: f,
            refunded: r,
            failed: x,
        };
        assert_eq!(
            s.buckets,
            vec![counts(1, 0, 0), counts(1, 1, 0), counts(0, 0, 1)]
        );
        assert_eq!(s.routes.len(), 2);
        let one = &s.routes[0];
        assert_eq!(
            (one.route.as_str(), one.counts.clone()),
            ("1>2", counts(2, 1, 0))
        );
        // Times 2 s, 10 s, 60 s: the median is 10 s, the 99th percentile the slowest.
        assert_eq!((one.p50_secs, one.p99_secs), (10.0, 60.0));
        assert_eq!(s.routes[1].p50_secs, 65.0);
    }

    #[test]
    fn nearest_rank_takes_the_smallest_value_covering_the_share() {
        let times: Vec<i64> = (1..=200).collect();
        assert_eq!(nearest_rank(&times, 50), 100);
        assert_eq!(nearest_rank(&times, 99), 198);
        assert_eq!(nearest_rank(&[7], 99), 7);
        assert_eq!(nearest_rank(&[], 50), 0);
    }
}
