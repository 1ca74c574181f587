//! `baton attester serve`: one attester, its own process — its own key, its own RPC endpoints per
//! chain, its own SQLite state — answering the engine over HTTP until ctrl-c (or SIGTERM).
//!
//! Its configuration is a TOML file (kebab-case keys; an unknown key is an error); the key is
//! never in it, only where to read it (`key = { env = "…" }` or `{ file = "…" }`):
//!
//! ```toml
//! listen = "127.0.0.1:8090"                  # BATON_ATTESTER_LISTEN
//! database = "sqlite://.baton/attester.db"   # BATON_ATTESTER_DATABASE
//! key = { env = "BATON_ATTESTER_KEY" }
//! confirmations = 2                          # for every chain that does not say
//! devnet = ".baton/devnet.json"              # chains from a devnet file, or:
//! [[chains]]
//! id = 1001
//! rpc-url = "http://127.0.0.1:8545"
//! origin-settler = "0x…"
//! destination-settler = "0x…"
//! confirmations = 3
//! # Other settler pairs it trusts there (a settler upgrade: the new pair, or the old one
//! # still serving the orders opened on it):
//! other-settlers = [{ origin = "0x…", destination = "0x…" }]
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use alloy::primitives::Address;
use anyhow::{Context, Result, bail};
use baton_adapters::abi::Settlers;
use baton_attester::http::{RenderMetrics, router};
use baton_planner::ChainId;
use serde::Deserialize;
use tracing::info;

use crate::config::SecretRef;

/// Where an attester listens unless told.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Its state unless told.
pub(crate) const DEFAULT_DATABASE: &str = "sqlite://.baton/attester.db";

/// The file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AttesterConfig {
    /// Where to listen.
    listen: Option<SocketAddr>,
    /// Its state (SQLite).
    database: Option<String>,
    /// Where its key is.
    key: SecretRef,
    /// Blocks deep a fill (or the block past a fill deadline) must be, for chains that do not say
    /// (default 2).
    confirmations: Option<u64>,
    /// A devnet file whose chains it follows.
    devnet: Option<PathBuf>,
    /// Chains, beside or instead of a devnet file's.
    #[serde(default)]
    chains: Vec<ChainConfig>,
}

/// One chain, through the attester's own endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ChainConfig {
    id: u64,
    rpc_url: String,
    origin_settler: Address,
    destination_settler: Address,
    confirmations: Option<u64>,
    #[serde(default)]
    other_settlers: Vec<Settlers>,
}

/// Serves the attester `config` describes until ctrl-c or SIGTERM.
pub(crate) fn serve(config: &Path) -> Result<ExitCode> {
    crate::logging("info");
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("reading attester config {}", config.display()))?;
    let mut c: AttesterConfig =
        toml::from_str(&text).with_context(|| format!("attester config {}", config.display()))?;
    if let Ok(listen) = std::env::var("BATON_ATTESTER_LISTEN") {
        c.listen = Some(
            listen
                .parse()
                .with_context(|| format!("BATON_ATTESTER_LISTEN={listen:?} is not HOST:PORT"))?,
        );
    }
    if let Ok(db) = std::env::var("BATON_ATTESTER_DATABASE") {
        c.database = Some(db);
    }
    let key = crate::config::signer("the attester key", &c.key.read("the attester key")?)?;
    let default_confirmations = c.confirmations.unwrap_or(2).max(1);
    // Each chain: its id, the attester's RPC URL there, the settler pairs it trusts, its depth.
    let mut chains: Vec<(ChainId, String, Vec<Settlers>, u64)> = Vec::new();
    if let Some(path) = &c.devnet {
        for ch in crate::config::read_devnet_file(path)?.chains {
            let settlers = ch.trusted_settlers();
            chains.push((
                ChainId(ch.chain_id),
                ch.rpc_url,
                settlers,
                default_confirmations,
            ));
        }
    }
    for ch in c.chains {
        if chains.iter().any(|(id, ..)| id.0 == ch.id) {
            bail!("chain {} is configured twice", ch.id);
        }
        let settlers = std::iter::once(Settlers {
            origin: ch.origin_settler,
            destination: ch.destination_settler,
        })
        .chain(ch.other_settlers)
        .collect();
        let confirmations = ch.confirmations.unwrap_or(default_confirmations).max(1);
        chains.push((ChainId(ch.id), ch.rpc_url, settlers, confirmations));
    }
    if chains.is_empty() {
        bail!("no chains: name a devnet file (`devnet = …`) or configure [[chains]]");
    }
    let database = c.database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    crate::server::prepare_database(&database)?;
    let listen = c
        .listen
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid default address"));
    crate::runtime()?.block_on(async move {
        let followed = chains
            .iter()
            .map(|(chain, url, settlers, confirmations)| {
                baton_attester::devnet::evm_chain(*chain, url, settlers, &key, *confirmations)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let store = baton_attester::store::Store::open(&database)
            .await
            .with_context(|| format!("opening the attester's store {database}"))?;
        let attester = Arc::new(baton_attester::Attester::new(key, followed, store));
        let metrics = metrics_render();
        let app = router(attester.clone(), Some(metrics));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        info!(address = %attester.address(), %addr, chains = chains.len(), "attester serving");
        println!(
            "baton attester {} serving on http://{addr}",
            attester.address()
        );
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .context("serving")?;
        Ok(ExitCode::SUCCESS)
    })
}

fn metrics_render() -> RenderMetrics {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("a metrics recorder was installed before");
    }
    Arc::new(move || handle.render())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_example_config_parses_and_unknown_keys_are_refused() {
        let config: AttesterConfig =
            toml::from_str(include_str!("../../attester.example.toml")).unwrap();
        assert_eq!(config.confirmations, Some(2));
        assert_eq!(config.key.env.as_deref(), Some("BATON_ATTESTER_KEY"));
        let err = toml::from_str::<AttesterConfig>(
            "key = { env = \"K\" }\nlisten = \"127.0.0.1:1\"\nthreshold = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("threshold"), "{err}");
    }

    #[test]
    fn a_chain_names_the_other_settler_pairs_it_trusts() {
        let text = "key = { env = \"K\" }\n[[chains]]\nid = 1001\nrpc-url = \"http://127.0.0.1:1\"\n\
                    origin-settler = \"0x0000000000000000000000000000000000000001\"\n\
                    destination-settler = \"0x0000000000000000000000000000000000000002\"\n\
                    other-settlers = [{ origin = \"0x0000000000000000000000000000000000000003\", \
                    destination = \"0x0000000000000000000000000000000000000004\" }]\n";
        let config: AttesterConfig = toml::from_str(text).unwrap();
        let other = &config.chains[0].other_settlers;
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].origin, Address::with_last_byte(3));
        assert_eq!(other[0].destination, Address::with_last_byte(4));
        // A pair must name both settlers.
        let half = text.replace(
            ", destination = \"0x0000000000000000000000000000000000000004\"",
            "",
        );
        assert!(toml::from_str::<AttesterConfig>(&half).is_err());
    }
}
