//! The engine, the top layer: accepts sagas (admission with its inventory reservation), drives
//! each in its own task, and answers for them.
//!
//! - this file: the [`Engine`], admission and the saga tasks;
//! - `recovery`: resuming unfinished sagas after a start, and the operators' pauses kept loaded;
//! - `commands`: operators' commands (pause, retry, resume with a change);
//! - `queries`: a saga as the API shows it, and the list of sagas.
//! - `supervise`: each saga's driver under a supervisor that restarts it after a database failure
//!   or a panic.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use baton_adapters::port::ChainAdapter;
use tokio::sync::broadcast;

use crate::attester::Attesters;
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent, SagaId};
use crate::log::{Admission, Appended, Notice, Pending, SagaLog};
use crate::now_ms;
use crate::observe;
use crate::saga::input::{Planned, SagaInput};
use crate::saga::shared::{Chains, Shared};
use crate::saga::state::SagaState;

mod commands;
mod queries;
mod recovery;
mod supervise;

/// How hard the engine has worked: time spent inside its saga drivers' ticks (its own logic, the
/// adapter calls and the saga-log commits they wait for; not the time spent waiting for blocks), and
/// steps done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Work {
    /// Nanoseconds inside ticks, over all sagas.
    pub busy_ns: u64,
    /// Of which waiting for saga-log commits to be durable.
    pub commit_ns: u64,
    /// Steps (and compensations) done.
    pub steps_done: u64,
    /// Transactions signed (first attempts, replacements and fresh nonces).
    pub signed: u64,
    /// Ticks run (each a look at a saga's steps, after a new block or its poll).
    pub ticks: u64,
}

/// The engine.
pub struct Engine {
    shared: Arc<Shared>,
    tasks: Arc<supervise::Tasks>,
}

impl Engine {
    /// An engine over `log`, reaching each chain through the solver's adapter on it.
    pub fn new(
        log: SagaLog,
        chains: Vec<Arc<dyn ChainAdapter>>,
        attesters: Attesters,
        config: EngineConfig,
    ) -> Self {
        let chains = chains.into_iter().map(|a| (a.chain_id(), a)).collect();
        Self {
            shared: Arc::new(Shared::new(log, chains, attesters, config)),
            tasks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Plans `input`, stores it, and starts its saga. Submitting the same intent again returns
    /// the same saga.
    pub async fn submit(&self, input: SagaInput) -> Result<SagaId> {
        let planned = input.plan()?;
        self.submit_planned(input, planned, None).await
    }

    /// Stores `input` as planned by the caller (see [`SagaInput::planned`]: the caller checked
    /// the user's signatures of its orders) and starts its saga; otherwise as [`Engine::submit`].
    /// A new saga's `submitter` (the API key's name) is recorded in its admission's commit.
    pub async fn submit_planned(
        &self,
        input: SagaInput,
        planned: Planned,
        submitter: Option<String>,
    ) -> Result<SagaId> {
        if self.shared.controls.braked() {
            return Err(EngineError::Paused);
        }
        self.shared.adapters_for(&planned)?;
        let id = SagaId::from(planned.plan.intent().id());
        // Admitted here and now: this instance holds the first lease (fence 1), taken in the
        // admission's commit. A saga admitted before is refused by the writer (its log is not
        // empty) and driven from its log, without a read before every admission.
        let started = SagaEvent::Started {
            intent: planned.plan.intent().id(),
            plan: planned.hash,
        };
        let refused = match self.admission(&input, &planned, submitter).await {
            Ok(admission) => {
                let (decided, durable) = self
                    .shared
                    .log
                    .admit_early(id, admission, started.clone())
                    .await?;
                match decided.await {
                    Ok(appended) => {
                        return self
                            .start_admitted(id, planned, &started, appended, durable)
                            .await;
                    }
                    // Refused, or its batch failed before deciding: the answer says why. (The
                    // writer announces every admission it writes; one written unannounced would
                    // be driven from its log, below.)
                    Err(_) => match durable.await.map_err(|_| EngineError::WriterGone)? {
                        Err(e) => e,
                        Ok(_) => EngineError::AlreadyAdmitted,
                    },
                }
            }
            Err(e) => e,
        };
        // A new saga the inventory cannot serve (the writer refuses a saga admitted before as
        // such, ahead of its inventory).
        if matches!(refused, EngineError::Inventory(_)) {
            return Err(refused);
        }
        // Admitted before (or its admission cannot be read now, e.g. a chain is down): a saga
        // with a log is driven from it; otherwise the error stands.
        let events = self.shared.log.events(id).await?;
        let Some(first) = events.first() else {
            return Err(refused);
        };
        let created_ms = first.at_ms;
        let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        self.spawn(id, planned, state, created_ms, None);
        Ok(id)
    }

    /// Starts the driver of a saga the writer decided to admit in the commit it is making, and
    /// returns once that commit is durable (or with why it failed). The driver signs its first
    /// transaction meanwhile; that one is broadcast only once its own append is durable, which
    /// the writer refuses unless the admission was stored ([`EngineError::NotAdmitted`]).
    async fn start_admitted(
        &self,
        id: SagaId,
        planned: Planned,
        started: &SagaEvent,
        appended: Appended,
        durable: Pending,
    ) -> Result<SagaId> {
        let route = observe::route(&planned.plan);
        let state = SagaState::from_events([(appended.seq, started)]);
        let lease = Some((1, now_ms() + self.shared.config.lease_ms()));
        let counted = self.shared.count_event();
        if counted.is_ok() {
            self.spawn(id, planned, state, now_ms(), lease);
        }
        durable.await.map_err(|_| EngineError::WriterGone)??;
        observe::admitted(&route);
        if let Err(stop) = counted {
            // Crash injection: admitted, and nothing more.
            let stopped = tokio::spawn(async move { Err(stop) });
            self.tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, stopped);
        }
        Ok(id)
    }

    /// What admits `planned`: its stored input, and its inventory against the solver's live
    /// balances, reserved until the fill deadline plus an hour.
    async fn admission(
        &self,
        input: &SagaInput,
        planned: &Planned,
        submitter: Option<String>,
    ) -> Result<Admission> {
        let mut available = BTreeMap::new();
        for asset in planned.plan.inventory().keys() {
            let chains = self.shared.chains_for(planned.config_version);
            let adapter = chains
                .get(&asset.chain)
                .ok_or(EngineError::NoAdapter(asset.chain.0))?;
            let balance = adapter.balance(asset.token.0, adapter.account()).await?;
            available.insert(*asset, balance);
        }
        let now = now_ms();
        let expires = (i64::from(planned.plan.intent().fill_deadline()) + 3_600) * 1_000;
        Ok(Admission {
            body: serde_json::to_string(input).map_err(|e| EngineError::Corrupt(e.to_string()))?,
            route: observe::route(&planned.plan),
            needs: planned
                .plan
                .inventory()
                .iter()
                .map(|(asset, amount)| (*asset, amount.raw()))
                .collect(),
            available,
            now_ms: now,
            expires_ms: expires.max(now + 3_600_000),
            lease: Some((
                self.shared.config.instance.clone(),
                now + self.shared.config.lease_ms(),
            )),
            submitter,
        })
    }

    fn spawn(
        &self,
        id: SagaId,
        planned: Planned,
        state: SagaState,
        created_ms: i64,
        lease: Option<(i64, i64)>,
    ) {
        supervise::spawn(
            &self.shared,
            &self.tasks,
            id,
            planned,
            state,
            created_ms,
            lease,
        );
    }

    /// Waits for `saga`'s outcome: its task's end when this engine drives it, or the outcome in
    /// its log once it completed (a completed saga's task is not kept).
    pub async fn wait(&self, saga: SagaId) -> Result<Outcome> {
        let task = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&saga);
        if let Some(task) = task {
            return task
                .await
                .map_err(|e| EngineError::Corrupt(format!("saga {saga} task: {e}")))?;
        }
        let events = self.shared.log.events(saga).await?;
        let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        match state.outcome {
            Some(outcome) if state.completed => Ok(outcome),
            _ => Err(EngineError::Corrupt(format!(
                "saga {saga} is not running here"
            ))),
        }
    }

    /// How many saga tasks this engine holds (running, or stopped for an operator).
    pub fn tasks_held(&self) -> usize {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The engine's work so far.
    pub fn work(&self) -> Work {
        Work {
            busy_ns: self.shared.busy_ns.load(Ordering::Relaxed),
            commit_ns: self.shared.commit_ns.load(Ordering::Relaxed),
            steps_done: self.shared.steps_done.load(Ordering::Relaxed),
            signed: self.shared.signed.load(Ordering::Relaxed),
            ticks: self.shared.ticks.load(Ordering::Relaxed),
        }
    }

    /// The engine's knobs.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The attesters, the hold for an operator and the fill margin every saga runs with now.
    pub fn knobs(&self) -> crate::config::Knobs {
        self.shared.knobs()
    }

    /// Switches every saga, running or new, to `knobs` (a newly active configuration version's).
    pub fn set_knobs(&self, knobs: crate::config::Knobs) {
        self.shared.set_knobs(knobs);
    }

    /// The saga log.
    pub fn log(&self) -> &SagaLog {
        &self.shared.log
    }

    /// The solver's adapter on each chain: those new sagas use.
    pub fn chains(&self) -> Arc<Chains> {
        self.shared.chains()
    }

    /// Makes new sagas use the adapters kept for `version`; false when none are kept.
    pub fn use_chains(&self, version: B256) -> bool {
        self.shared.use_chains(version)
    }

    /// Where the adapters of configuration versions this engine does not keep come from, when
    /// sagas admitted under them are recovered or claimed here; set once, before [`Self::recover`].
    pub fn set_version_source(&self, source: Arc<dyn crate::saga::shared::VersionChains>) {
        let _ = self.shared.source.set(source);
    }

    /// Keeps `chains` as configuration `version`'s adapters, for the sagas admitted under it
    /// (and, with `current`, for every saga admitted from now on). A saga runs to its end on its
    /// version's adapters; one whose version this engine does not keep runs on the current ones.
    pub fn set_chains(&self, version: B256, chains: Vec<Arc<dyn ChainAdapter>>, current: bool) {
        let chains = chains.into_iter().map(|a| (a.chain_id(), a)).collect();
        self.shared.set_chains(version, chains, current);
    }

    /// Every durable event from now on, as a [`Notice`].
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.shared.log.subscribe()
    }
}
