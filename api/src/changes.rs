//! Coordinated changes on each instance: every [`PULL_EVERY`] it activates the scheduled versions
//! whose time has come, switches to the active version when it runs another (its [`Switch`]
//! builds the adapters of the chains the version changes; sagas admitted before run to their end
//! on their own version's), declares the bundle it runs and the version it has staged, and validates
//! the proposed ones — their bundle holds together ([`Bundle::check`]), every chain's RPC answers
//! with the chain's id, and every contract (settlers, tokens, pools) has the code whose hash the
//! bundle declares. Instances racing on one version record each transition once (the engine's
//! transitions are conditional). The lifecycle's endpoints are the handlers' `config`.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, keccak256};
use alloy::providers::{Provider, ProviderBuilder};
use baton_engine::EngineError;
use baton_engine::changes::{Changes, Instance, State, Version};
use tracing::{info, warn};

use crate::App;
use crate::app::Runtime;
use crate::dto::config::{Bundle, ChainBundle};

pub(crate) mod guards;
pub mod shadow;

/// How often an instance declares itself, activates what is due and validates proposals.
pub const PULL_EVERY: Duration = Duration::from_secs(1);

/// An instance that has not declared itself for this long (or three of its pull intervals, when
/// longer) is shown as not alive.
pub const ALIVE_WITHIN_MS: i64 = 10_000;

/// How long an intent waits for its instance to switch to a version that became active since
/// its last pull, before it is refused (`switching`).
pub const SWITCH_WAIT: Duration = Duration::from_secs(5);

/// How long one chain's RPC has to answer one validation call.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Who this instance declares itself as (the bundle it runs is its [`crate::app::Runtime`]'s).
#[derive(Clone, Debug)]
pub struct Declared {
    /// The instance's name (`engine.instance`).
    pub instance: String,
    /// When it started, unix milliseconds.
    pub started_ms: i64,
    /// How often it pulls ([`PULL_EVERY`] by default).
    pub pull_every: Duration,
}

/// How an instance comes to run another configuration version: what builds the adapters of the
/// chains a bundle changes (the server's, with the solver's key) and hands them to the engine.
pub trait Switch: Send + Sync {
    /// Makes the engine keep `bundle`'s adapters as version `id`'s (the sagas admitted under it
    /// run on them) with the solver's inventory approved, and answers what new intents run under
    /// it; nothing changes for new intents until [`Engine::use_chains`](baton_engine::Engine::use_chains)
    /// and [`App::run`].
    fn prepare<'a>(
        &'a self,
        id: B256,
        bundle: &'a Bundle,
    ) -> futures_util::future::BoxFuture<'a, Result<Runtime, String>>;

    /// `bundle`'s venues (settlers, tokens, pools per chain), without building anything: what a
    /// shadow run trades on.
    fn venues(&self, bundle: &Bundle) -> Result<Vec<baton_engine::liquidity::Venue>, String>;
}

/// The versions in the saga log's database.
pub(crate) fn changes(app: &App) -> Changes {
    Changes::new(app.engine.log().db().clone())
}

/// What a version runs on, made ready with `switcher`.
async fn prepare(switcher: &dyn Switch, version: &Version) -> Result<Runtime, String> {
    let bundle: Bundle = serde_json::from_str(&version.body)
        .map_err(|e| format!("its bundle is not of the bundle's present shape: {e}"))?;
    switcher.prepare(version.id, &bundle).await
}

/// A version made ready ahead of its activation time, so the switch at that time is immediate.
pub(crate) struct Staged {
    /// The version.
    pub(crate) id: B256,
    /// When it activates, unix milliseconds.
    pub(crate) at_ms: i64,
    /// What new intents run under with it.
    pub(crate) runtime: Runtime,
}

/// Switches `app` to the active version `active`: its adapters for new sagas, then new intents.
async fn switch(app: &App, switcher: &dyn Switch, active: &Version) -> Result<(), String> {
    let staged = app
        .staged
        .lock()
        .await
        .take_if(|s| s.id == active.id)
        .map(|s| s.runtime);
    let runtime = match staged {
        Some(runtime) => runtime,
        None => prepare(switcher, active).await?,
    };
    if !app.engine.use_chains(active.id) {
        return Err("the engine does not keep its adapters".into());
    }
    app.run(runtime).await;
    Ok(())
}

/// What a new intent is admitted under: this instance's configuration once it runs the active
/// version. An instance that has not switched to a newly active version yet (it pulls rarely, or
/// has not pulled since) pulls now and waits up to [`SWITCH_WAIT`] for the switch, rather than
/// admit an intent under the version before.
pub(crate) async fn for_intake(app: &App) -> Result<Arc<Runtime>, crate::error::ApiError> {
    let runtime = app.runtime();
    let (Some(running), Some(_)) = (runtime.version, &app.switcher) else {
        // It runs its own configuration (no versions to follow).
        return Ok(runtime);
    };
    let Some(active) = changes(app).active_id().await? else {
        return Ok(runtime);
    };
    if active == running {
        return Ok(runtime);
    }
    let started = std::time::Instant::now();
    while started.elapsed() < SWITCH_WAIT {
        app.changes_wake.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = app.runtime();
        if now.version == Some(active) {
            return Ok(now);
        }
    }
    Err(crate::error::ApiError::new(
        crate::error::Code::Switching,
        format!(
            "this instance is switching to configuration version {active}, active since its last \
             pull; try again in a moment"
        ),
    ))
}

/// Makes the first scheduled version ready ahead of its time (once); answers it.
async fn stage(app: &App, switcher: &dyn Switch, changes: &Changes) -> Option<B256> {
    let scheduled = changes.in_state(State::Scheduled).await.ok()?;
    let next = scheduled.iter().min_by_key(|v| v.activate_at_ms)?;
    let mut staged = app.staged.lock().await;
    if staged.as_ref().is_some_and(|s| s.id == next.id) {
        return Some(next.id);
    }
    match prepare(switcher, next).await {
        Ok(runtime) => {
            info!(version = next.number, "configuration version staged");
            *staged = Some(Staged {
                id: next.id,
                at_ms: next.activate_at_ms.unwrap_or_default(),
                runtime,
            });
            Some(next.id)
        }
        Err(e) => {
            warn!(version = next.number, error = %e, "cannot stage the scheduled configuration version yet");
            None
        }
    }
}

/// Declares, activates and validates every [`PULL_EVERY`] (or when woken) until aborted.
pub async fn run(app: Arc<App>) {
    loop {
        if let Err(e) = tick(&app).await {
            warn!(error = %e, "configuration versions: a pull failed; trying again");
        }
        // Awake at a staged version's activation time, to switch then.
        let until_staged = app.staged.lock().await.as_ref().and_then(|s| {
            let ms = u64::try_from(s.at_ms - baton_engine::now_ms()).ok()?;
            Some(Duration::from_millis(ms + 1))
        });
        let every = app.declared.as_ref().map_or(PULL_EVERY, |d| d.pull_every);
        let wait = until_staged.map_or(every, |d| d.min(every));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = app.changes_wake.notified() => {}
        }
    }
}

/// One pull: declare this instance (when it has a [`Declared`]), activate what is due, validate
/// what is proposed.
pub async fn tick(app: &Arc<App>) -> Result<(), EngineError> {
    let changes = changes(app);
    let by = app
        .declared
        .as_ref()
        .map_or(app.engine.config().instance.as_str(), |d| {
            d.instance.as_str()
        });
    let now = baton_engine::now_ms();
    // The heads of the chains whose blocks scheduled versions wait for.
    let mut heads = std::collections::HashMap::new();
    for version in changes.in_state(State::Scheduled).await? {
        if let Some((chain, _)) = version.activate_at_block
            && !heads.contains_key(&chain)
            && let Some(adapter) = app
                .engine
                .chains()
                .get(&baton_planner::ChainId(chain))
                .cloned()
            && let Ok(head) = adapter.head().await
        {
            heads.insert(chain, head.number);
        }
    }
    for version in changes.activate_due(by, now, &heads).await? {
        info!(version = version.number, id = %version.id, "configuration version active");
    }
    let active = changes.active().await?;
    if let (Some(active), Some(switcher)) = (&active, &app.switcher)
        && app.runtime().version != Some(active.id)
    {
        match switch(app, switcher.as_ref(), active).await {
            Ok(()) => {
                info!(version = active.number, id = %active.id, "running configuration version")
            }
            Err(e) => {
                // Said once per version; tried again at every pull.
                let mut warned = app.switch_warned.lock().unwrap_or_else(|p| p.into_inner());
                if warned.replace(active.id) != Some(active.id) {
                    warn!(version = active.number, error = %e, "cannot run the active configuration version yet; trying again at every pull");
                }
            }
        }
    }
    if let Some(active) = &active
        && app.runtime().version == Some(active.id)
    {
        guards::watch(app, &changes, active, by, now).await?;
    }
    let staged = match &app.switcher {
        Some(switcher) => stage(app, switcher.as_ref(), &changes).await,
        None => None,
    };
    if let (Some(declared), Some(running)) = (&app.declared, app.runtime().version) {
        changes
            .declare(&Instance {
                name: declared.instance.clone(),
                running,
                staged,
                started_ms: declared.started_ms,
                seen_ms: now,
                pull_every_ms: i64::try_from(declared.pull_every.as_millis()).unwrap_or(i64::MAX),
            })
            .await?;
    }
    if let Some(active) = &active {
        metrics::gauge!("baton_config_active_version").set(active.number as f64);
    }
    for version in changes.in_state(State::Proposed).await? {
        if changes
            .shadow(version.id)
            .await?
            .is_some_and(|s| s.finished_ms.is_none() && s.started_ms >= version.updated_ms)
        {
            // Its shadow run is under way (here or on another instance).
            continue;
        }
        let (to, detail) = match validate(&version).await {
            Ok(checked) if shadow::on(app) => {
                if shadow::claim(app, &changes, &version, by).await? {
                    info!(version = version.number, "shadow run started");
                    tokio::spawn(shadow::run(app.clone(), version, checked, by.to_owned()));
                }
                continue;
            }
            Ok(checked) => (State::Validated, checked),
            Err(problems) => (State::Rejected, problems),
        };
        match changes
            .transition(version.id, to, by, &detail, baton_engine::now_ms())
            .await
        {
            Ok(v) => {
                info!(version = v.number, state = %v.state, %detail, "configuration version validated")
            }
            // Another instance decided first (or an operator rejected it meanwhile).
            Err(EngineError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Validates `version`: what was checked when it holds, or every problem found.
async fn validate(version: &Version) -> Result<String, String> {
    let bundle: Bundle = serde_json::from_str(&version.body)
        .map_err(|e| format!("the bundle is not of the bundle's shape: {e}"))?;
    bundle.check().map_err(|e| e.message)?;
    let found = futures_util::future::join_all(bundle.chains.iter().map(check_chain)).await;
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for (chain, found) in bundle.chains.iter().zip(found) {
        match found {
            Ok(contracts) => checked.push(format!(
                "chain {}: its id, and the code of {contracts} contracts",
                chain.id
            )),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(format!("checked {}", checked.join("; ")))
    } else {
        Err(problems.join("; "))
    }
}

/// Checks one chain's id and contracts: how many contracts, or the problems.
async fn check_chain(chain: &ChainBundle) -> Result<usize, Vec<String>> {
    let id = chain.id;
    let mut contracts: Vec<(String, Address, B256)> = vec![
        (
            "origin settler".into(),
            chain.origin_settler.address,
            chain.origin_settler.code_hash,
        ),
        (
            "destination settler".into(),
            chain.destination_settler.address,
            chain.destination_settler.code_hash,
        ),
    ];
    contracts.extend(
        chain
            .tokens
            .iter()
            .map(|t| (format!("token {}", t.symbol), t.address, t.code_hash)),
    );
    contracts.extend(
        chain
            .pools
            .iter()
            .map(|p| ("a pool".to_owned(), p.address, p.code_hash)),
    );
    let addresses: Vec<Address> = contracts.iter().map(|c| c.1).collect();
    let (answered, hashes) = read_chain(&chain.rpc_url.0, &addresses)
        .await
        .map_err(|e| vec![format!("chain {id}: its RPC did not answer ({e})")])?;
    if answered != id {
        return Err(vec![format!(
            "chain {id}: its RPC answers as chain {answered}"
        )]);
    }
    let mut problems = Vec::new();
    for ((what, address, declared), found) in contracts.iter().zip(&hashes) {
        match found {
            None => problems.push(format!("chain {id}: no code at {address} ({what})")),
            Some(h) if h != declared => problems.push(format!(
                "chain {id}: the {what} at {address} has code hash {h}; the bundle declares \
                 {declared}"
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(contracts.len())
    } else {
        Err(problems)
    }
}

/// Reads the chain id that the RPC at `url` answers with, and the keccak-256 of the code at each
/// of `addresses` (none where there is no code); each call within [`RPC_TIMEOUT`].
pub async fn read_chain(
    url: &str,
    addresses: &[Address],
) -> Result<(u64, Vec<Option<B256>>), String> {
    let parsed = url.parse().map_err(|_| "not a URL".to_owned())?;
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(parsed);
    let chain = tokio::time::timeout(RPC_TIMEOUT, provider.get_chain_id())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| short(&e))?;
    let mut hashes = vec![None; addresses.len()];
    // A node a few blocks behind finds no code at a contract deployed since: where there is none,
    // the chain is asked again a few times before it counts as absent.
    for attempt in 0..=ABSENT_ASKED_AGAIN {
        if attempt > 0 {
            if hashes.iter().all(Option::is_some) {
                break;
            }
            tokio::time::sleep(ABSENT_PAUSE).await;
        }
        for (address, hash) in addresses.iter().zip(hashes.iter_mut()) {
            if hash.is_some() {
                continue;
            }
            let code = tokio::time::timeout(RPC_TIMEOUT, provider.get_code_at(*address))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| short(&e))?;
            *hash = (!code.is_empty()).then(|| keccak256(&code));
        }
    }
    Ok((chain, hashes))
}

/// How many more times an address without code is asked about, [`ABSENT_PAUSE`] apart.
const ABSENT_ASKED_AGAIN: u32 = 3;
const ABSENT_PAUSE: Duration = Duration::from_millis(700);

/// An RPC error in a few words (never the URL, which may hold a provider's key).
fn short(e: &alloy::transports::TransportError) -> String {
    match e {
        alloy::transports::RpcError::ErrorResp(p) => format!("error {}: {}", p.code, p.message),
        alloy::transports::RpcError::Transport(_) => "the connection failed".into(),
        _ => "a malformed answer".into(),
    }
}
