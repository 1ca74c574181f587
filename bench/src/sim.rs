//! What the engine and recovery benches share: a sim world with room for many sagas (its chains
//! mine a block every millisecond), a saga log for one run, and nonces no earlier run used.

use std::time::Duration;

use baton_engine::simworld::{World, units_of};

/// A saga log for one run: `url`, or a fresh SQLite file (removed when dropped).
pub(crate) struct Log {
    pub(crate) url: String,
    _scratch: Option<baton_engine::log::db::ScratchSqlite>,
}

impl Log {
    pub(crate) fn new(url: Option<String>, name: &str) -> Self {
        match url {
            Some(url) => Self {
                url,
                _scratch: None,
            },
            None => {
                let scratch = baton_engine::log::db::ScratchSqlite::new(&format!("bench-{name}"));
                Self {
                    url: scratch.url(),
                    _scratch: Some(scratch),
                }
            }
        }
    }

    /// `postgres` or `sqlite`, for the record.
    pub(crate) fn kind(&self) -> &'static str {
        if self.url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

/// A sim world with room for many sagas: the user and the solver hold 100 million USDC each.
pub(crate) async fn world() -> World {
    let world = World::with_blocks_every(Duration::from_millis(1)).await;
    world
        .origin
        .mint(world.usdc_o, world.user.address(), units_of(100_000_000, 6));
    world.dest.mint(
        world.usdc_d,
        world.solver.address(),
        units_of(100_000_000, 6),
    );
    world
}

/// Nonces no earlier run used (the saga log may be a shared PostgreSQL database).
pub(crate) fn nonce_base() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    u64::try_from(micros).unwrap_or(0) << 8
}
