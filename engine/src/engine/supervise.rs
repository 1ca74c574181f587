//! Supervised saga drivers: each saga's driver runs under a supervisor that restarts it, with
//! backoff, when it stops on an error that waiting can cure (the database failed, or the driver
//! panicked), and records why in the saga's log as an alert. A saga never looks `running` with
//! nobody driving it; a driver ends for good only with the saga's outcome, when another instance
//! holds the saga, when the engine is stopping, or when it was told to stop (crash injection).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tracing::{Instrument, info_span, warn};

use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent, SagaId};
use crate::saga::Saga;
use crate::saga::input::Planned;
use crate::saga::shared::Shared;
use crate::saga::state::SagaState;

/// The first wait before a driver is restarted; it doubles up to [`RESTART_MAX`].
const RESTART_MIN: Duration = Duration::from_millis(200);
/// The longest wait between two restarts.
const RESTART_MAX: Duration = Duration::from_secs(30);

/// Every saga task of an engine, by saga.
pub(crate) type Tasks = Mutex<HashMap<SagaId, JoinHandle<Result<Outcome>>>>;

/// Starts saga `id`'s supervised driver in `tasks`, unless one runs already.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    tasks: &Arc<Tasks>,
    id: SagaId,
    planned: Planned,
    state: SagaState,
    created_ms: i64,
    lease: Option<(i64, i64)>,
) {
    let registry = Arc::downgrade(tasks);
    let mut tasks = tasks.lock().unwrap_or_else(|p| p.into_inner());
    if tasks.get(&id).is_some_and(|t| !t.is_finished()) {
        return;
    }
    let saga = Saga::new(shared.clone(), id, planned, state, created_ms, lease);
    let span = info_span!("saga", saga.id = %id);
    let shared = shared.clone();
    let task = async move {
        let ended = supervise(shared.clone(), id, saga, created_ms).await;
        // A completed saga leaves nothing behind (its outcome is in the log, where `wait` finds
        // it); one stopped for an operator keeps its task until an operator acts.
        if ended.is_ok() && !shared.is_stopped_for_operator(id) {
            forget(&registry, id);
        }
        ended
    };
    tasks.insert(id, tokio::spawn(task.instrument(span)));
}

/// Removes this task's entry for saga `id` from `registry` (not a newer task's).
fn forget(registry: &Weak<Tasks>, id: SagaId) {
    let Some(registry) = registry.upgrade() else {
        return;
    };
    let mut tasks = registry.lock().unwrap_or_else(|p| p.into_inner());
    if tasks.get(&id).is_some_and(|t| t.id() == tokio::task::id()) {
        tasks.remove(&id);
    }
}

/// Whether a driver that stopped with `e` is started again: only when the database failed under
/// it (a query, or a batch of appends). The others end the saga's task: another instance drives it (`LeaseLost`, `LeaseHeld`), the
/// log's writer is gone (the engine is stopping), its admission never committed, or a crash was
/// injected (tests).
fn restarts_after(e: &EngineError) -> bool {
    matches!(e, EngineError::Db(_) | EngineError::Append(_))
}

/// Runs `saga` to its end, restarting it from its log (with backoff, an alert each time) when it
/// stops on a database error or panics.
async fn supervise(
    shared: Arc<Shared>,
    id: SagaId,
    saga: Saga,
    created_ms: i64,
) -> Result<Outcome> {
    let mut driver = saga;
    let mut backoff = RESTART_MIN;
    loop {
        let ran = std::time::Instant::now();
        let why = match AssertUnwindSafe(driver.run()).catch_unwind().await {
            Ok(Ok(outcome)) => return Ok(outcome),
            Ok(Err(e)) if !restarts_after(&e) => return Err(e),
            Ok(Err(e)) => e.to_string(),
            Err(panic) => panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .map_or_else(|| "it panicked".to_owned(), |m| format!("it panicked: {m}")),
        };
        // A driver that ran a good while before it stopped starts again soon: the backoff is for
        // failures that come back at once.
        if ran.elapsed() > RESTART_MAX {
            backoff = RESTART_MIN;
        }
        warn!(saga = %id, %why, ?backoff, "the saga's driver stopped; restarting it");
        driver = loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RESTART_MAX);
            match restarted(&shared, id, &why, created_ms).await {
                Ok(Restart::Driver(saga)) => break *saga,
                Ok(Restart::Completed(outcome)) => return Ok(outcome),
                Err(e) if restarts_after(&e) => {
                    warn!(saga = %id, error = %e, "the saga's log cannot be read yet");
                }
                Err(e) => return Err(e),
            }
        };
    }
}

/// What a restart found.
enum Restart {
    /// A new driver, from the saga's log.
    Driver(Box<Saga>),
    /// The saga completed meanwhile (another instance finished it).
    Completed(Outcome),
}

/// A new driver for saga `id` from its log (the truth), after noting in it why the last one
/// stopped.
async fn restarted(
    shared: &Arc<Shared>,
    id: SagaId,
    why: &str,
    created_ms: i64,
) -> Result<Restart> {
    let (input, _, mut state) = crate::saga::input::stored(&shared.log, id)
        .await?
        .ok_or(EngineError::NotFound(id))?;
    if state.completed {
        let outcome = state
            .outcome
            .clone()
            .ok_or_else(|| EngineError::Corrupt("completed without an outcome".into()))?;
        return Ok(Restart::Completed(outcome));
    }
    let alert = SagaEvent::Alert {
        reason: format!("the saga's driver stopped ({why}); it was restarted"),
    };
    let appended = shared.log.append(id, alert.clone()).await?;
    state.apply(appended.seq, &alert);
    let planned = input.plan_stored()?;
    Ok(Restart::Driver(Box::new(Saga::new(
        shared.clone(),
        id,
        planned,
        state,
        created_ms,
        None,
    ))))
}
