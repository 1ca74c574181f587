//! Wiring the server: the saga log, an EVM adapter per chain signing as the solver, the solver's
//! approvals, the engine (recovered), and the API on a TCP listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use baton_adapters::port::ChainAdapter;
use baton_api::dto::config::Bundle;
use baton_api::{App, Keys};
use baton_engine::changes::Changes;
use baton_engine::{Db, Engine, SagaLog, liquidity};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Resolved;
use crate::runtime::{Adapters, Switcher, runtime_of};

/// A running server.
pub(crate) struct Running {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting requests and waits for the server to end.
    pub(crate) async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("the server task")??;
        Ok(())
    }

    /// Waits until the server ends (it does when its listener fails).
    pub(crate) async fn wait(&mut self) -> Result<()> {
        (&mut self.task).await.context("the server task")??;
        Ok(())
    }
}

/// Creates the folder of a `sqlite://` database file.
pub(crate) fn prepare_database(url: &str) -> Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    Ok(())
}

/// How long startup keeps trying to approve the solver's inventory on a chain whose calls fail on
/// the way (a provider that rate-limits an instance starting beside busy ones, a node restarting).
const APPROVE_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// [`liquidity::approve_inventory`], tried again while the chain's calls fail on the way (after the
/// adapter's own retries), for up to [`APPROVE_FOR`]; anything else ends startup at once. Trying
/// again is safe: it reads the allowances first and approves only what is still missing.
pub(crate) async fn approve_inventory(
    adapter: &dyn ChainAdapter,
    venue: &liquidity::Venue,
) -> baton_engine::Result<usize> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        match liquidity::approve_inventory(adapter, venue).await {
            Err(baton_engine::EngineError::Chain(baton_adapters::AdapterError::Chain {
                what,
                detail,
            })) if started.elapsed() < APPROVE_FOR => {
                warn!(chain = venue.chain.0, %what, %detail, "approving the solver's inventory failed on the way; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(10));
            }
            done => return done,
        }
    }
}

/// Connects everything `config` names and starts serving.
pub(crate) async fn start(mut config: Resolved) -> Result<Running> {
    prepare_database(&config.database)?;
    let db = Db::connect(&config.database)
        .await
        .with_context(|| format!("opening the saga log at {}", redact(&config.database)))?;
    let log = SagaLog::new(db.clone());
    // A fresh deployment's config file becomes its first configuration version; later, the
    // active version is the deployment's, and an instance runs it whatever its file says (its
    // own settings and secrets stay its file's).
    let file = config.bundle().await?;
    let (active, ours) = Changes::new(db.clone())
        .bootstrap(
            &file.to_value(),
            &config.engine.instance,
            baton_engine::now_ms(),
        )
        .await
        .context("recording the configuration version")?;
    let (running, bundle) = if ours {
        info!(version = active.number, id = %active.id, "configuration version");
        (active.id, file)
    } else {
        match serde_json::from_str::<Bundle>(&active.body) {
            Ok(bundle) => {
                warn!(
                    version = active.number,
                    id = %active.id,
                    "running configuration version {}, which is active; this instance's config \
                     file differs from it (propose the file's changes as a new version)",
                    active.number
                );
                config
                    .adopt(&bundle)
                    .with_context(|| format!("running configuration version {}", active.number))?;
                (active.id, bundle)
            }
            Err(e) => {
                warn!(
                    version = active.number,
                    error = %e,
                    "configuration version {} is active but predates the bundle's present shape; \
                     this instance runs its config file",
                    active.number
                );
                (file.id(), file)
            }
        }
    };
    let declared = baton_api::changes::Declared {
        instance: config.engine.instance.clone(),
        started_ms: baton_engine::now_ms(),
        pull_every: config.pull_every,
    };
    let built = Arc::new(Adapters::new(
        config.solver.clone(),
        log.clone(),
        config.engine.instance.clone(),
        config.nonce_claim,
        config.follow,
    ));
    let mut adapters: Vec<Arc<dyn ChainAdapter>> = Vec::new();
    let mut venues = Vec::new();
    let mut settings = config.settings;
    for (venue, endpoint) in config.chains {
        settings.rpc_urls.insert(venue.chain, endpoint.url.clone());
        let adapter = built.adapter(&venue, &endpoint).await?;
        let approved = approve_inventory(adapter.as_ref(), &venue)
            .await
            .with_context(|| format!("chain {}: approving the solver's inventory", venue.chain))?;
        if approved > 0 {
            info!(
                chain = venue.chain.0,
                approved, "approved the solver's inventory"
            );
        }
        adapters.push(adapter);
        venues.push(venue);
    }
    let trial_key = Some(config.solver.clone());
    // The attesters of the version it runs (a switch sets another version's).
    let knobs = crate::runtime::knobs_of(&bundle)?;
    info!(
        attesters = bundle.attesters.len(),
        "asking attesters for settlements and cancels"
    );
    let engine = Arc::new(Engine::new(
        log,
        adapters.clone(),
        (*knobs.attesters).clone(),
        config.engine,
    ));
    // The sagas of this version run on these adapters; those of older versions, recovered or
    // claimed here, on their own version's (built when needed); new versions are switched to.
    engine.set_chains(running, adapters, true);
    let switcher = Arc::new(Switcher {
        adapters: built,
        engine: std::sync::OnceLock::new(),
        db: db.clone(),
    });
    let _ = switcher.engine.set(engine.clone());
    engine.set_version_source(switcher.clone());
    let resumed = engine.recover().await?;
    if !resumed.is_empty() {
        info!(sagas = resumed.len(), "resumed unfinished sagas");
    }
    let keys = Keys::new(config.api_keys).map_err(anyhow::Error::msg)?;
    let runtime = runtime_of(Some(running), &bundle, venues.clone());
    let mut app = App::new(engine, venues, settings, keys);
    app.trial_key = trial_key;
    app.declared = Some(declared);
    app.switcher = Some(switcher);
    app.run(runtime).await;
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(baton_api::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr,
        stop: Some(stop),
        task,
    })
}

/// A database URL without its password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
