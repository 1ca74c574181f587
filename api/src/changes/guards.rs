//! Guards: the health conditions a version's bundle names (refunds, failures, RPC errors over a
//! window after its activation), watched by every instance running it. When one trips, the
//! instance brakes intake (every chain paused) and proposes the rollback to the version the
//! active one changed; with `rollback_at_once` it takes the rollback through validation,
//! approval (recorded as the guard's, with why) and activation itself, and releases its own brake
//! once it runs the version rolled back to. A guard trips once per version: not again on an
//! instance that tripped it, nor on any once the rollback is under way (the version rolled back to
//! is no longer superseded).

use baton_engine::EngineError;
use baton_engine::changes::{Changes, State, Version};
use baton_engine::control::Scope;
use tracing::{info, warn};

use super::validate;
use crate::App;
use crate::dto::config::{Bundle, Guards};

/// What an instance remembers of the guards.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The last version whose guard this instance tripped.
    tripped: Option<alloy::primitives::B256>,
    /// The version rolled back to at once, whose running lifts this instance's brake.
    release_on: Option<alloy::primitives::B256>,
}

/// Who the guard's actions are recorded as.
fn guard_of(instance: &str) -> String {
    format!("guard ({instance})")
}

/// Which of `guards`' conditions is broken, in a sentence (none: all hold): the `outcomes` (each
/// kind with its count) of the intents admitted since the version became active, and each chain's
/// RPC error rate in `rpc`.
pub(crate) fn broken(
    guards: &Guards,
    outcomes: &[(String, u64)],
    rpc: &[(u64, Option<f64>)],
) -> Option<String> {
    let n: u64 = outcomes.iter().map(|(_, count)| count).sum();
    if n >= u64::from(guards.min_outcomes) && n > 0 {
        let limits = [
            ("refunded", guards.max_refunded_bps),
            ("failed", guards.max_failed_bps),
        ];
        for (kind, limit) in limits {
            let Some(limit) = limit else { continue };
            let count = outcomes
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(0, |(_, count)| *count);
            if count * 10_000 > u64::from(limit) * n {
                return Some(format!(
                    "{count} of the {n} intents admitted under it were {kind} ({} bps; the \
                     guard allows {limit})",
                    count * 10_000 / n
                ));
            }
        }
    }
    let limit = guards.max_rpc_error_bps?;
    rpc.iter().find_map(|(chain, rate)| {
        let bps = (rate.filter(|r| r.is_finite())? * 10_000.0).round() as u64;
        (bps > u64::from(limit)).then(|| {
            format!("chain {chain}'s RPC error rate is {bps} bps; the guard allows {limit}")
        })
    })
}

/// Watches `active`'s guards (when this instance runs it, within the guards' window) and acts
/// when one trips; lifts this instance's brake once it runs a version rolled back to at once.
pub(crate) async fn watch(
    app: &App,
    changes: &Changes,
    active: &Version,
    instance: &str,
    now_ms: i64,
) -> Result<(), EngineError> {
    let by = guard_of(instance);
    let release = {
        let mut watch = app.guards.lock().unwrap_or_else(|p| p.into_inner());
        watch.release_on.take_if(|v| *v == active.id).is_some()
    };
    if release {
        release_brake(app, &by).await?;
    }
    let Ok(Bundle {
        guards: Some(guards),
        chains,
        ..
    }) = serde_json::from_str::<Bundle>(&active.body)
    else {
        return Ok(());
    };
    let since = active.updated_ms;
    let window_ms = i64::try_from(guards.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if now_ms.saturating_sub(since) > window_ms {
        return Ok(());
    }
    if app.guards.lock().unwrap_or_else(|p| p.into_inner()).tripped == Some(active.id) {
        return Ok(());
    }
    // Another instance's guard tripped first: the rollback is under way.
    if let Some(parent) = active.parent
        && let Some(p) = changes.version(parent).await?
        && !matches!(p.state, State::Superseded | State::RolledBack)
    {
        return Ok(());
    }
    let outcomes = app.engine.log().outcomes_admitted_since(since).await?;
    let rpc: Vec<(u64, Option<f64>)> = chains
        .iter()
        .map(|c| {
            let rate = app.engine.rpc_error_rate(baton_planner::ChainId(c.id));
            (c.id, rate)
        })
        .collect();
    let Some(why) = broken(&guards, &outcomes, &rpc) else {
        return Ok(());
    };
    app.guards.lock().unwrap_or_else(|p| p.into_inner()).tripped = Some(active.id);
    let reason = format!(
        "the guard of configuration version {} tripped: {why}",
        active.number
    );
    warn!(version = active.number, %reason, "guard tripped: braking intake and proposing the rollback");
    app.engine.pause(Scope::All, &by, &reason).await?;
    let target = match changes.rollback(None, &by, &reason, now_ms).await {
        Ok(target) => target,
        Err(EngineError::Conflict(e)) => {
            warn!(version = active.number, error = %e, "the guard cannot propose a rollback; intake stays braked");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    info!(version = target.number, "rollback proposed by the guard");
    if guards.rollback_at_once {
        at_once(app, changes, &target, active, &by, &reason).await?;
    }
    Ok(())
}

/// Takes the rollback to `target` (proposed) to active now, as `active`'s guards say.
async fn at_once(
    app: &App,
    changes: &Changes,
    target: &Version,
    active: &Version,
    by: &str,
    reason: &str,
) -> Result<(), EngineError> {
    let checked = match validate(target).await {
        Ok(checked) => checked,
        Err(problems) => {
            // Left proposed: the pull validates it again and operators take it from there.
            warn!(version = target.number, %problems, "the rollback does not validate; intake stays braked");
            return Ok(());
        }
    };
    let now = baton_engine::now_ms();
    let approved = format!(
        "at once, as the guards of version {} say ({reason})",
        active.number
    );
    let steps = [
        (State::Validated, checked.as_str()),
        (State::Approved, approved.as_str()),
    ];
    for (to, detail) in steps {
        match changes.transition(target.id, to, by, detail, now).await {
            Ok(_) | Err(EngineError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    match changes.schedule(target.id, now, by, now).await {
        Ok(_) | Err(EngineError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    changes
        .activate_due(by, now, &std::collections::HashMap::new())
        .await?;
    app.guards
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .release_on = Some(target.id);
    info!(version = target.number, "rolled back at once by the guard");
    Ok(())
}

/// Lifts the pause of everything when the guard `by` set it (not an operator's).
async fn release_brake(app: &App, by: &str) -> Result<(), EngineError> {
    let pauses = app.engine.pauses().await?;
    if pauses.iter().any(|p| p.scope == Scope::All && p.by == by) {
        app.engine.resume(Scope::All, by).await?;
        info!("the guard's brake released: running the version rolled back to");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn counts(fulfilled: u64, refunded: u64, failed: u64) -> Vec<(String, u64)> {
        [
            ("failed", failed),
            ("fulfilled", fulfilled),
            ("refunded", refunded),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_owned(), n))
        .collect()
    }

    fn guards() -> Guards {
        Guards {
            window_secs: 600,
            min_outcomes: 4,
            max_refunded_bps: Some(2_500),
            max_failed_bps: Some(0),
            max_rpc_error_bps: Some(5_000),
            rollback_at_once: false,
        }
    }

    #[test]
    fn a_guard_trips_on_the_share_of_outcomes_once_there_are_enough() {
        let g = guards();
        // 1 of 4: 2500 bps is allowed, above is not.
        assert_eq!(broken(&g, &counts(3, 1, 0), &[]), None);
        let why = broken(&g, &counts(3, 2, 0), &[]).unwrap();
        assert!(why.starts_with("2 of the 5 intents admitted under it were refunded (4000 bps"));
        // Fewer than min_outcomes: nothing counts yet.
        assert_eq!(broken(&g, &counts(0, 3, 0), &[]), None);
        assert_eq!(broken(&g, &[], &[]), None);
        assert!(
            broken(&g, &counts(3, 0, 1), &[])
                .unwrap()
                .contains("were failed")
        );
    }

    #[test]
    fn a_guard_trips_on_a_chain_whose_rpc_fails_too_often() {
        let g = guards();
        assert_eq!(broken(&g, &[], &[(1, Some(0.5)), (2, None)]), None);
        let why = broken(&g, &[], &[(1, Some(0.2)), (2, Some(0.51))]).unwrap();
        assert_eq!(
            why,
            "chain 2's RPC error rate is 5100 bps; the guard allows 5000"
        );
        let without = Guards {
            max_rpc_error_bps: None,
            ..g
        };
        assert_eq!(broken(&without, &[], &[(2, Some(1.0))]), None);
    }
}
