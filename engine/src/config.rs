//! The engine's knobs ([`EngineConfig`]): what every saga driver reads, set once per engine.

use std::time::Duration;

/// The engine's knobs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Pause between two looks at a saga.
    pub poll: Duration,
    /// A transaction pending this many blocks is replaced with higher fees (same nonce).
    pub replace_after_blocks: u64,
    /// Transactions signed for one step (first, replacements, re-sends) before it fails for good.
    pub max_attempts: u32,
    /// A chain whose RPC error rate over the last `health_window` is above this (with at least 20
    /// calls in the window) holds new steps.
    pub unhealthy_error_rate: f64,
    /// The window over which a chain's RPC error rate is judged: an outage after a long healthy
    /// run counts in full, and errors that stopped are forgotten.
    pub health_window: Duration,
    /// Stop every saga right after the engine's n-th appended event, as a crash would (tests).
    pub stop_after_events: Option<u64>,
    /// This instance's name in saga leases: instances sharing a database need distinct names, and
    /// an instance that restarts under its name takes its sagas back at once. Default:
    /// `$BATON_INSTANCE`, else `baton@<hostname>`.
    pub instance: String,
    /// How long a saga's lease lasts without renewal; another instance may take the saga over
    /// after that.
    pub lease: Duration,
    /// When a step fails for good before the pivot, hold the saga this long for an operator
    /// (who may try a change on forks and resume it with [`crate::Engine::resume_with`]) before
    /// compensating; never past the point where the rest of the plan would miss the fill
    /// deadline. Zero (the default): compensate at once.
    pub hold_for_operator: Duration,
    /// How often a running engine looks for sagas whose lease another instance let lapse and
    /// takes them over: an instance that dies leaves its sagas to the others within `lease` plus
    /// this (35 s at the defaults).
    pub claim_every: Duration,
    /// A fill is signed (first, replacement or fresh nonce) only while it is expected to land this
    /// many of its destination chain's blocks before the order's fill deadline: in the block after
    /// the chain's head, or as much later as the solver's transactions sent before it take (what
    /// the chain's follower sees queued). Later, it could land after the deadline, when the
    /// settler refuses it and the user is refunded. The margin is for what the estimate misses
    /// (a view of the chain a block old, a block that comes late).
    pub fill_margin_blocks: u64,
}

impl EngineConfig {
    /// How long before the fill deadline a fill must be signed on a chain whose blocks come
    /// `block_time_ms` apart (a second when not known yet), besides the solver's transactions
    /// queued ahead of it: the block it lands in and [`EngineConfig::fill_margin_blocks`]. The
    /// engine signs by this; the API admits intents by it.
    pub fn fill_room_ms(&self, block_time_ms: u64) -> u64 {
        fill_room_ms(self.fill_margin_blocks, block_time_ms)
    }

    /// [`EngineConfig::lease`] in milliseconds.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The room a fill needs before the deadline with `margin_blocks` on a chain whose blocks come
/// `block_time_ms` apart (see [`EngineConfig::fill_room_ms`]).
pub(crate) fn fill_room_ms(margin_blocks: u64, block_time_ms: u64) -> u64 {
    let block_ms = if block_time_ms == 0 {
        1_000
    } else {
        block_time_ms
    };
    margin_blocks.saturating_add(1).saturating_mul(block_ms)
}

/// What a configuration version sets in a running engine beside its adapters, taken up by every
/// saga from the moment the engine switches to it ([`crate::Engine::set_knobs`]): the attesters
/// asked (the origin settlers' sets on the chains say whose signatures count), the hold for an
/// operator, and the fill margin. They start as the [`EngineConfig`] and the attesters the engine
/// is made with.
#[derive(Clone)]
pub struct Knobs {
    /// The attesters asked to sign settlements and cancels.
    pub attesters: std::sync::Arc<crate::attester::Attesters>,
    /// See [`EngineConfig::hold_for_operator`].
    pub hold_for_operator: Duration,
    /// See [`EngineConfig::fill_margin_blocks`].
    pub fill_margin_blocks: u64,
}

impl std::fmt::Debug for Knobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knobs")
            .field("hold_for_operator", &self.hold_for_operator)
            .field("fill_margin_blocks", &self.fill_margin_blocks)
            .finish_non_exhaustive()
    }
}

impl Knobs {
    /// See [`EngineConfig::fill_room_ms`].
    pub fn fill_room_ms(&self, block_time_ms: u64) -> u64 {
        fill_room_ms(self.fill_margin_blocks, block_time_ms)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            replace_after_blocks: 3,
            max_attempts: 5,
            unhealthy_error_rate: 0.5,
            health_window: Duration::from_secs(60),
            stop_after_events: None,
            instance: default_instance(),
            lease: Duration::from_secs(30),
            hold_for_operator: Duration::ZERO,
            claim_every: Duration::from_secs(5),
            fill_margin_blocks: 1,
        }
    }
}

fn default_instance() -> String {
    std::env::var("BATON_INSTANCE").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("baton@{}", host.trim())
    })
}
