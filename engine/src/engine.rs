//! The engine: accepts sagas, drives each in its own task, and resumes unfinished ones after a
//! restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_adapters::port::{BlockRef, ChainAdapter, Conditions};
use baton_planner::ChainId;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span};

use crate::attester::Attester;
use crate::control::{self, Controls, OperatorAction, Pause, Scope};
use crate::error::{EngineError, Result};
use crate::event::{Outcome, SagaEvent, SagaId};
use crate::input::{Planned, SagaInput};
use crate::log::{Admission, Notice, SagaLog, SagaSummary};
use crate::now_ms;
use crate::saga::Saga;
use crate::state::SagaState;
use crate::view::SagaView;

/// The engine's knobs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Pause between two looks at a saga.
    pub poll: Duration,
    /// A transaction pending this many blocks is replaced with higher fees (same nonce).
    pub replace_after_blocks: u64,
    /// Transactions signed for one step (first, replacements, re-sends) before it fails for good.
    pub max_attempts: u32,
    /// A chain whose RPC error rate is above this holds new steps.
    pub unhealthy_error_rate: f64,
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
    /// (who may try a change on forks and resume it with [`Engine::resume_with`]) before
    /// compensating; never past the point where the rest of the plan would miss the fill
    /// deadline. Zero (the default): compensate at once.
    pub hold_for_operator: Duration,
}

impl EngineConfig {
    /// [`EngineConfig::lease`] in milliseconds.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            replace_after_blocks: 3,
            max_attempts: 5,
            unhealthy_error_rate: 0.5,
            stop_after_events: None,
            instance: default_instance(),
            lease: Duration::from_secs(30),
            hold_for_operator: Duration::ZERO,
        }
    }
}

/// What every saga task shares.
pub(crate) struct Shared {
    pub(crate) log: SagaLog,
    pub(crate) chains: HashMap<ChainId, Arc<dyn ChainAdapter>>,
    pub(crate) attester: Arc<dyn Attester>,
    pub(crate) config: EngineConfig,
    pub(crate) appended: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) commit_ns: AtomicU64,
    pub(crate) steps_done: AtomicU64,
    pub(crate) signed: AtomicU64,
    pub(crate) ticks: AtomicU64,
    pub(crate) controls: Controls,
    /// Whether the pause reloader runs.
    pub(crate) watching: std::sync::atomic::AtomicBool,
    /// Each chain's latest conditions, shared by every saga polling it.
    pub(crate) views: HashMap<ChainId, tokio::sync::Mutex<Option<ChainView>>>,
    /// The head feed of each chain whose adapter has one ([`ChainAdapter::new_heads`]).
    pub(crate) heads: HashMap<ChainId, tokio::sync::watch::Receiver<BlockRef>>,
}

/// A chain's conditions as last read, and how fast its head moves (wall clock).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChainView {
    conditions: Conditions,
    read: Instant,
    head_moved: Instant,
    per_block: Duration,
}

/// The longest a chain's conditions are reused.
const VIEW_TTL_MAX: Duration = Duration::from_millis(100);

/// How often an engine reloads the operators' pauses from the database.
const PAUSE_RELOAD: Duration = Duration::from_secs(2);

impl Shared {
    /// `chain`'s conditions, read at most once per a tenth of its (wall-clock) block interval and
    /// 100 ms: hundreds of sagas polling a chain with one-second blocks cost it ten reads a second,
    /// while a chain with millisecond blocks is read every time. Concurrent callers share one
    /// read. A chain whose head feed announced another head than the one read is read again.
    pub(crate) async fn conditions(&self, chain: ChainId) -> Result<Conditions> {
        let adapter = self
            .chains
            .get(&chain)
            .ok_or(EngineError::NoAdapter(chain.0))?;
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

    /// Whether this engine has an adapter on every chain of `planned`'s steps.
    fn adapters_for(&self, planned: &Planned) -> Result<()> {
        match planned
            .plan
            .steps()
            .iter()
            .find(|step| !self.chains.contains_key(&step.chain))
        {
            Some(step) => Err(EngineError::NoAdapter(step.chain.0)),
            None => Ok(()),
        }
    }

    /// Counts one appended event; with crash injection on, `Err(Stopped)` at the chosen one.
    pub(crate) fn count_event(&self) -> Result<()> {
        let n = self.appended.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.stop_after_events == Some(n) {
            return Err(EngineError::Stopped(n));
        }
        Ok(())
    }
}

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
    tasks: Mutex<HashMap<SagaId, JoinHandle<Result<Outcome>>>>,
}

impl Engine {
    /// An engine over `log`, reaching each chain through the solver's adapter on it.
    pub fn new(
        log: SagaLog,
        chains: Vec<Arc<dyn ChainAdapter>>,
        attester: Arc<dyn Attester>,
        config: EngineConfig,
    ) -> Self {
        let chains: HashMap<ChainId, Arc<dyn ChainAdapter>> =
            chains.into_iter().map(|a| (a.chain_id(), a)).collect();
        let views = chains
            .keys()
            .map(|c| (*c, tokio::sync::Mutex::new(None)))
            .collect();
        let heads = chains
            .iter()
            .filter_map(|(c, a)| Some((*c, a.new_heads()?)))
            .collect();
        Self {
            shared: Arc::new(Shared {
                log,
                chains,
                attester,
                config,
                appended: AtomicU64::new(0),
                busy_ns: AtomicU64::new(0),
                commit_ns: AtomicU64::new(0),
                steps_done: AtomicU64::new(0),
                signed: AtomicU64::new(0),
                ticks: AtomicU64::new(0),
                controls: Controls::default(),
                watching: std::sync::atomic::AtomicBool::new(false),
                views,
                heads,
            }),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Plans `input`, stores it, and starts its saga. Submitting the same intent again returns
    /// the same saga.
    pub async fn submit(&self, input: SagaInput) -> Result<SagaId> {
        if self.shared.controls.braked() {
            return Err(EngineError::Paused);
        }
        let planned = input.plan()?;
        self.shared.adapters_for(&planned)?;
        let id = SagaId::from(planned.plan.intent().id());
        // Admitted here and now: this instance holds the first lease (fence 1), taken in the
        // admission's commit. A saga admitted before is refused by the writer (its log is not
        // empty) and driven from its log, without a read before every admission.
        let started = SagaEvent::Started {
            intent: planned.plan.intent().id(),
            plan: planned.hash,
        };
        let refused = match self.admission(&input, &planned).await {
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
        appended: crate::log::Appended,
        durable: crate::log::Pending,
    ) -> Result<SagaId> {
        let route = crate::observe::route(&planned.plan);
        let state = SagaState::from_events([(appended.seq, started)]);
        let lease = Some((1, now_ms() + self.shared.config.lease_ms()));
        let counted = self.shared.count_event();
        if counted.is_ok() {
            self.spawn(id, planned, state, now_ms(), lease);
        }
        durable.await.map_err(|_| EngineError::WriterGone)??;
        crate::observe::admitted(&route);
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

    /// Resumes every unfinished saga in the log (after loading the operators' pauses); returns
    /// their ids. Sagas stopped for an operator stop again at once: [`Engine::retry`] resumes them.
    pub async fn recover(&self) -> Result<Vec<SagaId>> {
        let pauses = control::load(self.shared.log.db(), &self.shared.controls).await?;
        if !pauses.is_empty() {
            info!(?pauses, "paused by operators");
        }
        self.watch_pauses();
        let reclaimed = crate::reserve::reclaim(self.shared.log.db(), now_ms()).await?;
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
                part.into_iter()
                    .map(|u| {
                        let (id, events) = (u.id, u.events);
                        let (input, started) =
                            SagaInput::running(id, &u.body, events.iter().map(|(_, e)| e))?;
                        let planned = input.plan_stored()?;
                        if started.is_some_and(|h| h != planned.hash) {
                            return Err(EngineError::Corrupt(format!(
                                "saga {id}: re-planning gave another plan than the one it started with"
                            )));
                        }
                        let state = SagaState::from_events(events.iter().map(|(seq, e)| (*seq, e)));
                        Ok((id, planned, state, u.created_ms))
                    })
                    .collect::<Result<Vec<_>>>()
            }));
        }
        let mut ready = Vec::with_capacity(ids.len());
        for part in planning {
            ready.extend(
                part.await
                    .map_err(|e| EngineError::Corrupt(format!("planning: {e}")))??,
            );
        }
        info!(sagas = ready.len(), "resuming");
        for (id, planned, state, created_ms) in ready {
            self.spawn(id, planned, state, created_ms, None);
        }
        Ok(ids)
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

    /// What admits `planned`: its stored input, and its inventory against the solver's live
    /// balances, reserved until the fill deadline plus an hour.
    async fn admission(&self, input: &SagaInput, planned: &Planned) -> Result<Admission> {
        let mut available = BTreeMap::new();
        for asset in planned.plan.inventory().keys() {
            let adapter = self
                .shared
                .chains
                .get(&asset.chain)
                .ok_or(EngineError::NoAdapter(asset.chain.0))?;
            let balance = adapter.balance(asset.token.0, adapter.account()).await?;
            available.insert(*asset, balance);
        }
        let now = now_ms();
        let expires = (i64::from(planned.plan.intent().fill_deadline()) + 3_600) * 1_000;
        Ok(Admission {
            body: serde_json::to_string(input).map_err(|e| EngineError::Corrupt(e.to_string()))?,
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
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.get(&id).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let saga = Saga::new(self.shared.clone(), id, planned, state, created_ms, lease);
        let span = info_span!("saga", saga.id = %id);
        tasks.insert(id, tokio::spawn(saga.run().instrument(span)));
    }

    /// Waits for `saga`'s outcome (its task must have been started by this engine).
    pub async fn wait(&self, saga: SagaId) -> Result<Outcome> {
        let task = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&saga)
            .ok_or_else(|| EngineError::Corrupt(format!("saga {saga} is not running here")))?;
        task.await
            .map_err(|e| EngineError::Corrupt(format!("saga {saga} task: {e}")))?
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

    /// The saga log.
    pub fn log(&self) -> &SagaLog {
        &self.shared.log
    }

    /// The solver's adapter on each chain.
    pub fn chains(&self) -> &HashMap<ChainId, Arc<dyn ChainAdapter>> {
        &self.shared.chains
    }

    /// Every durable event from now on, as a [`Notice`].
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.shared.log.subscribe()
    }

    /// Pauses `scope` (no new transaction starts there; with [`Scope::All`] no intent is admitted
    /// either) on behalf of `by`, recorded with `reason`; returns the pauses in force.
    pub async fn pause(&self, scope: Scope, by: &str, reason: &str) -> Result<Vec<Pause>> {
        info!(%scope, by, reason, "paused by an operator");
        control::set(
            self.shared.log.db(),
            &self.shared.controls,
            scope,
            true,
            by,
            reason,
            now_ms(),
        )
        .await
    }

    /// Lifts the pause of `scope` on behalf of `by`; returns the pauses in force.
    pub async fn resume(&self, scope: Scope, by: &str) -> Result<Vec<Pause>> {
        info!(%scope, by, "resumed by an operator");
        control::set(
            self.shared.log.db(),
            &self.shared.controls,
            scope,
            false,
            by,
            "",
            now_ms(),
        )
        .await
    }

    /// The pauses in force (as stored: another instance's pauses count too).
    pub async fn pauses(&self) -> Result<Vec<Pause>> {
        control::load(self.shared.log.db(), &self.shared.controls).await
    }

    /// The latest `limit` operator actions, newest first.
    pub async fn operator_actions(&self, limit: i64) -> Result<Vec<OperatorAction>> {
        control::actions(self.shared.log.db(), limit).await
    }

    /// Retries a saga that stopped (for an operator, or because its driver ended) on behalf of
    /// `by`: writes `Retried` to its log (failed steps get a fresh budget of attempts, a `Failed`
    /// outcome is withdrawn) and drives it again here.
    pub async fn retry(&self, saga: SagaId, by: &str) -> Result<()> {
        let running = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&saga)
            .is_some_and(|t| !t.is_finished());
        if running {
            return Err(EngineError::Conflict(format!(
                "saga {saga} is running; only a stopped saga can be retried"
            )));
        }
        let (input, events, mut state) = self
            .stored(saga)
            .await?
            .ok_or(EngineError::NotFound(saga))?;
        if state.completed {
            return Err(EngineError::Conflict(format!(
                "saga {saga} is completed; there is nothing to retry"
            )));
        }
        let planned = input.plan_stored()?;
        let retried = SagaEvent::Retried { by: by.to_owned() };
        let appended = self.shared.log.append(saga, retried.clone()).await?;
        state.apply(appended.seq, &retried);
        control::record(
            self.shared.log.db(),
            by,
            "retry",
            &saga.to_string(),
            "",
            now_ms(),
        )
        .await?;
        info!(%saga, by, "retried by an operator");
        let created_ms = events.first().map_or_else(now_ms, |e| e.at_ms);
        self.spawn(saga, planned, state, created_ms, None);
        Ok(())
    }

    /// The input `saga` runs, its events and its state folded from them; `None` when it is not in
    /// the log.
    async fn stored(
        &self,
        saga: SagaId,
    ) -> Result<Option<(SagaInput, Vec<crate::log::StoredEvent>, SagaState)>> {
        let Some(body) = self.shared.log.input(saga).await? else {
            return Ok(None);
        };
        let events = self.shared.log.events(saga).await?;
        let (input, _) = SagaInput::running(saga, &body, events.iter().map(|e| &e.event))?;
        let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        Ok(Some((input, events, state)))
    }

    /// The input and state of `saga` when an operator may resume it with a change
    /// ([`Engine::resume_with`]); otherwise [`EngineError::Conflict`] saying why not.
    pub async fn resumable(&self, saga: SagaId) -> Result<(SagaInput, SagaState)> {
        let (stored, _, state) = self
            .stored(saga)
            .await?
            .ok_or(EngineError::NotFound(saga))?;
        state.resumable().map_err(|why| {
            EngineError::Conflict(format!("saga {saga} cannot be resumed: {why}"))
        })?;
        Ok((stored, state))
    }

    /// Resumes a saga held for an operator (see [`EngineConfig::hold_for_operator`]) with
    /// `change`, on behalf of `by`: re-plans the intent over `snapshot` (the chains' liquidity
    /// now) with the saga's knobs changed, checks that the plan still has the user's signed
    /// orders and keeps every done step as it was, logs the decision (`Resumed`, and the operator
    /// action), and drives the new plan here. Returns the new plan's steps (`action on chain`).
    ///
    /// The saga's lease is taken first, so a driver elsewhere cannot act on the old plan
    /// afterwards; a saga whose lease another instance holds is refused. Inventory stays
    /// reserved as it was at admission (a re-plan that needs other tokens is not re-reserved).
    pub async fn resume_with(
        &self,
        saga: SagaId,
        snapshot: baton_planner::spec::SnapshotSpec,
        change: crate::replay::Change,
        by: &str,
    ) -> Result<Vec<String>> {
        let (stored, state) = self.resumable(saga).await?;
        let old = stored.plan_stored()?;
        let input = stored.replanned(snapshot, change.apply(stored.config));
        let planned = input.plan().map_err(|e| {
            EngineError::Conflict(format!(
                "with the change, the intent does not plan over the chains' liquidity now with \
                 the user's signed orders: {e}"
            ))
        })?;
        self.shared.adapters_for(&planned)?;
        let same = |p: &Planned, id| {
            p.plan
                .step(id)
                .map(|s| (s.chain, format!("{:?}", s.action)))
        };
        for (id, st) in &state.steps {
            if st.is_done() && same(&old, *id) != same(&planned, *id) {
                return Err(EngineError::Conflict(format!(
                    "with the change, step {} (done) would be another step; the change must keep \
                     the done steps",
                    id.0
                )));
            }
        }

        // Stop the held driver here, and fence out any other.
        let held = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&saga);
        if let Some(task) = held {
            task.abort();
            let _ = task.await;
        }
        let owner = &self.shared.config.instance;
        let ttl = self.shared.config.lease_ms();
        let fence = self
            .shared
            .log
            .acquire_lease(saga, owner, now_ms(), ttl)
            .await?
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "saga {saga} is driven by another instance; resume it there"
                ))
            })?;
        let lease = Some((fence, now_ms() + ttl));
        let resumed = SagaEvent::Resumed {
            by: by.to_owned(),
            change,
            input: serde_json::to_value(&input).map_err(|e| EngineError::Corrupt(e.to_string()))?,
            plan: planned.hash,
        };
        self.shared.log.append_fenced(saga, resumed, fence).await?;
        let events = self.shared.log.events(saga).await?;
        let state = SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
        let created_ms = events.first().map_or_else(now_ms, |e| e.at_ms);
        if state.held_until_ms.is_some() || state.resumed_plan != Some(planned.hash) {
            // The hold ended (compensation began) before the resume was written: the saga goes on
            // as it was.
            self.spawn(saga, old, state.clone(), created_ms, lease);
            return Err(EngineError::Conflict(format!(
                "saga {saga} stopped being held before the resume was logged: {}",
                state.compensating.unwrap_or_default()
            )));
        }
        control::record(
            self.shared.log.db(),
            by,
            "resume-saga",
            &saga.to_string(),
            &serde_json::to_string(&change).unwrap_or_default(),
            now_ms(),
        )
        .await?;
        info!(%saga, by, ?change, "resumed with a change by an operator");
        let steps = crate::replay::step_list(&planned.plan);
        self.spawn(saga, planned, state, created_ms, lease);
        Ok(steps)
    }

    /// Saga `saga` as it stands (status, outcome, every step with its chain's confirmations), or
    /// `None` when it is not in the log.
    pub async fn view(&self, saga: SagaId) -> Result<Option<SagaView>> {
        let Some((input, events, state)) = self.stored(saga).await? else {
            return Ok(None);
        };
        let planned = input.plan_stored()?;
        let mut heads = HashMap::new();
        for step in planned.plan.steps() {
            if heads.contains_key(&step.chain) {
                continue;
            }
            if let Some(adapter) = self.shared.chains.get(&step.chain)
                && let Ok(head) = adapter.head().await
            {
                heads.insert(step.chain, head.number);
            }
        }
        let times = (
            events.first().map_or(0, |e| e.at_ms),
            events.last().map_or(0, |e| e.at_ms),
        );
        Ok(Some(crate::view::build(
            saga,
            &planned.plan,
            &state,
            times,
            &heads,
        )))
    }

    /// Sagas newest first, in `state` only when given, at most `limit`.
    pub async fn sagas(&self, state: Option<&str>, limit: i64) -> Result<Vec<SagaSummary>> {
        self.shared.log.summaries(state, limit).await
    }
}

fn default_instance() -> String {
    std::env::var("BATON_INSTANCE").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("baton@{}", host.trim())
    })
}
