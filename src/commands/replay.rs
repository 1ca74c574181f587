//! `baton replay`: a saga replayed on local anvil forks of the chains it touched and reported;
//! with `--with FILE`, a change tried on fresh forks; with `--resume`, the server asked to replay,
//! try the change and resume the saga with it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baton_adapters::devnet::DevnetFile;
use baton_engine::{Db, SagaId, SagaLog};

use crate::client;

/// `baton replay ID`: replays the saga from the log at `database` on forks of the chains of the
/// devnet file and `--rpc`s, with `--with`'s change tried when given, and prints the report.
pub(crate) async fn replay(
    saga: &str,
    database: &str,
    devnet: &Path,
    rpc_args: &[String],
    json: bool,
    with: Option<&Path>,
) -> Result<ExitCode> {
    let saga =
        SagaId(saga.parse().with_context(|| {
            format!("{saga:?} is not a saga id (0x followed by 64 hex digits)")
        })?);
    let mut rpcs = std::collections::HashMap::new();
    let description: Option<DevnetFile> = match std::fs::read_to_string(devnet) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a devnet file", devnet.display()))?,
        ),
        Err(_) => None,
    };
    for c in description.iter().flat_map(|d| &d.chains) {
        rpcs.insert(baton_planner::ChainId(c.chain_id), c.rpc_url.clone());
    }
    let trial = match with {
        Some(path) => Some(trial(path, description.as_ref())?),
        None => None,
    };
    for arg in rpc_args {
        let (chain, url) = arg
            .split_once('=')
            .with_context(|| format!("--rpc {arg:?}: write CHAIN=URL"))?;
        let chain: u64 = chain
            .parse()
            .with_context(|| format!("--rpc {arg:?}: {chain:?} is not a chain id"))?;
        rpcs.insert(baton_planner::ChainId(chain), url.to_owned());
    }
    if database.starts_with("sqlite://") && !Path::new(&database["sqlite://".len()..]).exists() {
        bail!("no saga log at {database}");
    }
    let log = SagaLog::new(Db::connect(database).await?);
    let anvil = baton_adapters::devnet::find_anvil()?;
    let quiet = json;
    let report = baton_replay::replay(&log, saga, &rpcs, &anvil, trial.as_ref(), &|line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    })
    .await?;
    print_report(&report, json)?;
    Ok(ExitCode::SUCCESS)
}

/// A replay report as one JSON object, or as text.
fn print_report(report: &baton_replay::Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", baton_replay::render(report));
    }
    Ok(())
}

/// The change of `--with FILE`: planner knobs (an unknown key is an error).
fn read_change(path: &Path) -> Result<baton_planner::ConfigPatch> {
    serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a change (planner knobs)", path.display()))
}

/// `baton replay ID --with FILE --resume`: the server replays, tries the change and, when the
/// trial fulfils the intent, resumes the saga with it. Fails (exit 1) when it was not resumed.
pub(crate) async fn resume(
    saga: &str,
    server: &str,
    api_key: Option<&str>,
    with: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let change = read_change(with.context("--resume needs --with FILE")?)?;
    let key =
        api_key.context("--resume goes through the server: set --api-key or BATON_API_KEY")?;
    if !json {
        eprintln!("replaying on forks, trying the change and resuming at {server} …");
    }
    let body = client::Client::new(server, key)?
        .replay(saga, &change, true)
        .await?;
    let report: baton_replay::Report =
        serde_json::from_value(body).context("the server's replay report does not parse")?;
    print_report(&report, json)?;
    if report.resume.as_ref().is_some_and(|r| r.resumed) {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// The trial of `--with FILE`: the change, the devnet's venues, and the solver's key (from
/// BATON_SOLVER_KEY, else the devnet file's dev account); the trial makes its own attester on the
/// forks.
fn trial(path: &Path, devnet: Option<&DevnetFile>) -> Result<baton_replay::Trial> {
    let change = read_change(path)?;
    let devnet = devnet.context("--with needs the devnet file (the venues and dev keys)")?;
    let key = |env: &str, role: &str| -> Result<alloy::signers::local::PrivateKeySigner> {
        let key = match std::env::var(env) {
            Ok(k) => k,
            Err(_) => devnet
                .accounts
                .get(role)
                .map(|a| a.dev_private_key.clone())
                .with_context(|| format!("no {role} key: set {env}"))?,
        };
        key.trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("the {role} key is not a private key"))
    };
    Ok(baton_replay::Trial {
        change,
        venues: devnet
            .chains
            .iter()
            .map(baton_engine::liquidity::devnet_venue)
            .collect(),
        solver: key("BATON_SOLVER_KEY", "solver")?,
    })
}
