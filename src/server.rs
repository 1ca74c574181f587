//! Wiring the server: the saga log, an EVM adapter per chain signing as the solver, the solver's
//! approvals, the engine (recovered), and the API on a TCP listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use baton_adapters::evm::{EvmAdapter, EvmConfig};
use baton_adapters::follow::Followed;
use baton_adapters::port::ChainAdapter;
use baton_api::{App, Keys};
use baton_attester::client::{Attest, HttpAttester};
use baton_engine::attester::Attesters;
use baton_engine::changes::Changes;
use baton_engine::{Db, Engine, SagaLog, SharedNonces, StoredEvents, liquidity};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Resolved;

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
async fn approve_inventory(
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
pub(crate) async fn start(config: Resolved) -> Result<Running> {
    prepare_database(&config.database)?;
    let db = Db::connect(&config.database)
        .await
        .with_context(|| format!("opening the saga log at {}", redact(&config.database)))?;
    let log = SagaLog::new(db.clone());
    // A fresh deployment's config file becomes its first configuration version; later, the
    // active version is the deployment's. Instances do not run versions yet: each runs its file,
    // declares the bundle it runs, and says when that is not the active version.
    let bundle = config.bundle().await?;
    let (active, ours) = Changes::new(db.clone())
        .bootstrap(
            &bundle.to_value(),
            &config.engine.instance,
            baton_engine::now_ms(),
        )
        .await
        .context("recording the configuration version")?;
    if ours {
        info!(version = active.number, id = %active.id, "configuration version");
    } else {
        warn!(
            version = active.number,
            id = %active.id,
            "configuration version {} is active; this instance's config file differs from it",
            active.number
        );
    }
    let declared = baton_api::changes::Declared {
        instance: config.engine.instance.clone(),
        running: bundle.id(),
        started_ms: baton_engine::now_ms(),
    };
    let mut adapters: Vec<Arc<dyn ChainAdapter>> = Vec::new();
    let mut venues = Vec::new();
    let mut settings = config.settings;
    for (venue, endpoint) in config.chains {
        let url = &endpoint.url;
        settings.rpc_urls.insert(venue.chain, url.clone());
        let mut evm = EvmConfig::new(
            venue.chain,
            url.parse()
                .with_context(|| format!("chain {}: RPC URL {url:?}", venue.chain))?,
            venue.settlers,
        );
        if let Some(rps) = endpoint
            .requests_per_second
            .and_then(std::num::NonZeroU32::new)
        {
            evm.requests_per_second = rps;
        }
        if let Some(from) = endpoint.logs_from_block {
            evm.logs_from_block = from;
        }
        if let Some(max) = endpoint.logs_max_range {
            evm.logs_max_range = max.max(1);
        }
        // Settler events of old blocks are kept in the saga log's database: read once, also
        // across restarts and instances.
        let mut evm = EvmAdapter::new(evm, config.solver.clone())?
            .with_events(Arc::new(StoredEvents::new(&db)));
        if let Db::Postgres(_) = db {
            // Several instances may sign as the solver on this database: they share its nonces.
            evm = evm.with_nonces(Arc::new(SharedNonces::new(
                &log,
                &config.engine.instance,
                config.nonce_claim,
            )));
        }
        let mut adapter: Arc<dyn ChainAdapter> = Arc::new(evm);
        if let Some(follow) = config.follow {
            // One read per block instead of per request; it follows until the adapter is dropped.
            let followed = Followed::new(adapter, follow);
            // Until its first block, reads go to the node; the task tries again.
            if let Err(e) = followed.sync().await {
                warn!(chain = venue.chain.0, error = %e, "the follower could not read the chain yet");
            }
            followed.spawn();
            adapter = followed;
        }
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
    let mut members: Vec<Arc<dyn Attest>> = Vec::new();
    for url in &config.attesters {
        let client =
            HttpAttester::new(url.clone(), config.attest_timeout).map_err(anyhow::Error::msg)?;
        members.push(Arc::new(client));
    }
    info!(
        attesters = members.len(),
        "asking attesters for settlements and cancels"
    );
    let engine = Engine::new(
        log,
        adapters,
        Attesters::new(members, config.attest_timeout),
        config.engine,
    );
    let resumed = engine.recover().await?;
    if !resumed.is_empty() {
        info!(sagas = resumed.len(), "resumed unfinished sagas");
    }
    let keys = Keys::new(config.api_keys).map_err(anyhow::Error::msg)?;
    let mut app = App::new(Arc::new(engine), venues, settings, keys);
    app.trial_key = trial_key;
    app.declared = Some(declared);
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
