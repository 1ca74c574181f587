//! Recovery: after a start or a restart, every unfinished saga in the log is re-planned and driven
//! again; the operators' pauses are loaded and kept up to date.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::info;

use super::Engine;
use super::supervise::{self, Tasks};
use crate::control;
use crate::error::{EngineError, Result};
use crate::event::SagaId;
use crate::log::Unfinished;
use crate::log::reserve;
use crate::now_ms;
use crate::saga::input::{Planned, SagaInput};
use crate::saga::shared::Shared;
use crate::saga::state::SagaState;

/// How often an engine reloads the operators' pauses from the database.
const PAUSE_RELOAD: Duration = Duration::from_secs(2);

impl Engine {
    /// Resumes every unfinished saga in the log (after loading the operators' pauses); returns
    /// their ids. Sagas stopped for an operator stop again at once: [`Engine::retry`] resumes them.
    pub async fn recover(&self) -> Result<Vec<SagaId>> {
        let pauses = control::load(self.shared.log.db(), &self.shared.controls).await?;
        if !pauses.is_empty() {
            info!(?pauses, "paused by operators");
        }
        self.watch_pauses();
        self.watch_leases();
        let reclaimed = reserve::reclaim(self.shared.log.db(), now_ms()).await?;
        if reclaimed > 0 {
            info!(reclaimed, "released expired reservations");
        }
        // Everything is loaded and re-planned first (two queries, planning spread over the
        // cores), then every driver starts.
        let unfinished = self
            .shared
            .log
            .unfinished_with_inputs(&self.shared.config.instance, now_ms())
            .await?;
        let ids: Vec<SagaId> = unfinished.iter().map(|u| u.id).collect();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = unfinished.len().div_ceil(workers).max(1);
        let mut planning = Vec::new();
        let mut rest = unfinished;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(chunk));
            let part = std::mem::replace(&mut rest, tail);
            planning.push(tokio::task::spawn_blocking(move || {
                part.into_iter().map(resumable).collect::<Result<Vec<_>>>()
            }));
        }
        let mut ready = Vec::with_capacity(ids.len());
        for part in planning {
            ready.extend(
                part.await
                    .map_err(|e| EngineError::Corrupt(format!("planning: {e}")))??,
            );
        }
        self.shared
            .keep_versions(ready.iter().map(|r| r.1.config_version))
            .await;
        info!(sagas = ready.len(), "resuming");
        for (id, planned, state, created_ms) in ready {
            self.spawn(id, planned, state, created_ms, None);
        }
        Ok(ids)
    }

    /// Claims, every [`EngineConfig::claim_every`](crate::EngineConfig::claim_every), the sagas
    /// whose lease another instance let lapse (it died, or lost its database), for as long as the
    /// engine lives: their drivers start here without a restart. Sagas driven here, or stopped
    /// here for an operator, are left alone. Started once, by the first recovery.
    fn watch_leases(&self) {
        if self.shared.claiming.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::downgrade(&self.shared);
        let tasks = Arc::downgrade(&self.tasks);
        let every = self.shared.config.claim_every;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let (Some(shared), Some(tasks)) = (shared.upgrade(), tasks.upgrade()) else {
                    return;
                };
                match claim(&shared, &tasks).await {
                    Ok(0) => {}
                    Ok(claimed) => info!(claimed, "took over sagas whose lease lapsed"),
                    Err(e) => tracing::warn!(error = %e, "looking for lapsed leases"),
                }
                for (chain, adapter) in shared.chains().iter() {
                    match adapter.plug_nonce_gaps().await {
                        Ok(0) => {}
                        Ok(plugged) => tracing::warn!(
                            chain = chain.0,
                            plugged,
                            "plugged nonces their holder abandoned (it stopped between signing and logging)"
                        ),
                        Err(e) => {
                            tracing::warn!(chain = chain.0, error = %e, "looking for abandoned nonces")
                        }
                    }
                }
            }
        });
    }

    /// Reloads the operators' pauses every few seconds (another instance on the same database may
    /// pause a chain), for as long as the engine lives. Started once, by the first recovery.
    fn watch_pauses(&self) {
        if self.shared.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PAUSE_RELOAD).await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if let Err(e) = control::load(shared.log.db(), &shared.controls).await {
                    tracing::warn!(error = %e, "reloading the operators' pauses");
                }
            }
        });
    }
}

/// Starts a driver for every saga whose lease lapsed elsewhere and that is not driven or stopped
/// for an operator here; returns how many. Each driver takes the saga's lease first (a fence
/// moves on), so of two instances claiming one saga at once, one drives it.
async fn claim(shared: &Arc<Shared>, tasks: &Arc<Tasks>) -> Result<usize> {
    let owner = &shared.config.instance;
    let lapsed = shared.log.lapsed_with_inputs(owner, now_ms()).await?;
    let mut claimed = 0;
    for u in lapsed {
        let driven = tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&u.id)
            .is_some_and(|t| !t.is_finished());
        if driven || shared.is_stopped_for_operator(u.id) {
            continue;
        }
        match resumable(u) {
            Ok((id, planned, state, created_ms)) => {
                shared.keep_versions([planned.config_version]).await;
                supervise::spawn(shared, tasks, id, planned, state, created_ms, None);
                claimed += 1;
            }
            Err(e) => tracing::warn!(error = %e, "a lapsed saga was not claimed"),
        }
    }
    Ok(claimed)
}

/// An unfinished saga ready to drive: its plan re-made from its stored input and checked against
/// the hash it started with, and its state folded from its events.
fn resumable(u: Unfinished) -> Result<(SagaId, Planned, SagaState, i64)> {
    let (input, started) = SagaInput::running(u.id, &u.body, u.events.iter().map(|(_, e)| e))?;
    let planned = input.plan_stored()?;
    if started.is_some_and(|h| h != planned.hash) {
        return Err(EngineError::Corrupt(format!(
            "saga {}: re-planning gave another plan than the one it started with",
            u.id
        )));
    }
    let state = SagaState::from_events(u.events.iter().map(|(seq, e)| (*seq, e)));
    Ok((u.id, planned, state, u.created_ms))
}
