//! `baton`: the command line. Wiring only; the work lives in the crates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use baton_adapters::devnet::{Devnet, DevnetFile, stop_detached};
use baton_engine::{Db, SagaId, SagaLog};
use baton_planner::spec::{IntentSpec, SnapshotSpec};
use baton_planner::{LiquidityGraph, LiquiditySnapshot, PlannerConfig, describe::describe, plan};
use clap::{Args, Parser, Subcommand};

mod bench;
mod client;
mod config;
mod demo;
mod server;

/// baton: a cross-network execution coordinator (an intent solver).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plan intents over a liquidity snapshot and print each plan (or why it cannot be planned).
    Plan {
        /// Intent files, or folders of them (every `*.json` inside, in name order).
        #[arg(default_value = "fixtures/intents")]
        intents: Vec<PathBuf>,
        /// The liquidity snapshot to plan over.
        #[arg(
            long,
            env = "BATON_SNAPSHOT",
            default_value = "fixtures/snapshots/devnet.json"
        )]
        snapshot: PathBuf,
        /// Most pool swaps in one route.
        #[arg(long, default_value_t = PlannerConfig::default().max_hops)]
        max_hops: usize,
        /// Swap slippage bound, basis points.
        #[arg(long, default_value_t = PlannerConfig::default().slippage_bps)]
        slippage_bps: u32,
    },
    /// Start or stop the local devnet: anvil chains with the fixture contracts deployed and seeded.
    Devnet {
        #[command(subcommand)]
        action: DevnetAction,
    },
    /// Measure baton: the engine, recovery, intents end to end on anvil, and intake over REST
    /// (the figures of BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        bench: bench::Bench,
    },
    /// Check the saga log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Serve the REST API: the engine on the configured chains and saga log.
    Serve {
        /// The config file (TOML); see the README's "Configuration".
        #[arg(long, env = "BATON_CONFIG", default_value = "baton.toml")]
        config: PathBuf,
    },
    /// The whole path on two local anvil chains: quote, sign, submit and follow the example
    /// intents over REST, print each outcome, then stop everything.
    Demo {
        /// The example intents.
        #[arg(default_value = "fixtures/intents")]
        intents: PathBuf,
    },
    /// Quote an intent file.
    Quote {
        /// The intent file (as in fixtures/intents/).
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Submit an intent: a signed submission file, or an intent file quoted and signed here with
    /// an anvil dev key.
    Submit {
        /// The file.
        file: PathBuf,
        /// Quote the intent file and sign its orders with anvil dev key N (devnets only).
        #[arg(long, value_name = "N")]
        sign_with_dev_key: Option<usize>,
        /// Makes a retried submission safe.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show an intent's status and steps.
    Status {
        /// The intent id.
        id: String,
        /// Keep showing changes until the outcome.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Replay a saga on local anvil forks of the chains it touched and report where it diverges
    /// from its log, or the failing step with its revert reason and call trace. Never sends
    /// anything to a real chain.
    Replay {
        /// The saga (intent) id.
        saga: String,
        /// The saga log's database: sqlite://PATH or postgres://…
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE)]
        database: String,
        /// The devnet file naming each chain's RPC URL.
        #[arg(long, env = "BATON_DEVNET", default_value = DEVNET_FILE)]
        devnet: PathBuf,
        /// A chain's RPC URL, as CHAIN=URL (overrides the devnet file; repeatable).
        #[arg(long = "rpc", value_name = "CHAIN=URL")]
        rpcs: Vec<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Try a change on fresh forks: a JSON file of planner knobs (`max_hops`, `slippage_bps`,
        /// `fee_ceiling_pct`, `split`). The intent is re-planned from the forks' state where the
        /// saga failed and run there; the solver and attester keys come from the devnet file (or
        /// BATON_SOLVER_KEY / BATON_ATTESTER_KEY).
        #[arg(long = "with", value_name = "FILE")]
        with: Option<PathBuf>,
        /// After a trial of `--with` that fulfils the intent, resume the real saga with the change
        /// (it must be held for an operator). The server that drives the saga replays, tries and
        /// resumes (`POST /v1/sagas/{id}/replay`), and logs the decision; needs an operator key.
        #[arg(long, requires = "with")]
        resume: bool,
        /// The server's base URL (for `--resume`).
        #[arg(long, env = "BATON_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The operator's API key (for `--resume`).
        #[arg(long, env = "BATON_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
    },
    /// List sagas (operator key).
    Sagas {
        /// Only sagas in this state (running, held, resumed, compensating, decided,
        /// retried, completed).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the server is, and the API key to use.
#[derive(Args)]
struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "BATON_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The API key.
    #[arg(long, env = "BATON_API_KEY", hide_env_values = true)]
    api_key: String,
}

impl ServerArgs {
    fn client(&self) -> Result<client::Client> {
        client::Client::new(&self.server, &self.api_key)
    }
}

#[derive(Subcommand)]
enum AuditAction {
    /// Recompute the hash chain of every saga's events (or one saga's) and report the first broken
    /// link; exits 1 when the log has been altered.
    Verify {
        /// Only this saga (its id, 0x-prefixed hex).
        #[arg(long)]
        saga: Option<String>,
        /// The saga log's database: sqlite://PATH or postgres://…
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE)]
        database: String,
    },
}

/// The embedded default saga log.
pub(crate) const DEFAULT_DATABASE: &str = "sqlite://.baton/baton.db";

#[derive(Subcommand)]
enum DevnetAction {
    /// Start anvil nodes on 127.0.0.1, deploy and seed the contracts, write the devnet file, and
    /// leave the nodes running.
    Up {
        /// How many chains (ids 1001, 1002, …).
        #[arg(long, default_value_t = 2)]
        chains: usize,
        /// Seconds per block; without it, every transaction is mined at once.
        #[arg(long)]
        block_time: Option<u64>,
        /// Where to write the devnet file.
        #[arg(long, env = "BATON_DEVNET", default_value = DEVNET_FILE)]
        file: PathBuf,
    },
    /// As dev account N (default 1, the user), let each chain's origin settler pull every test
    /// token: what a wallet approves before its first intent.
    Approve {
        /// The dev account.
        #[arg(long = "as", default_value_t = baton_adapters::devnet::USER)]
        account: usize,
        /// The devnet file.
        #[arg(long, env = "BATON_DEVNET", default_value = DEVNET_FILE)]
        file: PathBuf,
    },
    /// Stop the nodes named in the devnet file and remove it.
    Down {
        /// The devnet file.
        #[arg(long, env = "BATON_DEVNET", default_value = DEVNET_FILE)]
        file: PathBuf,
    },
}

const DEVNET_FILE: &str = ".baton/devnet.json";

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan {
            intents,
            snapshot,
            max_hops,
            slippage_bps,
        } => {
            let config = PlannerConfig {
                max_hops,
                slippage_bps,
                ..PlannerConfig::default()
            };
            plan_files(&intents, &snapshot, &config)
        }
        Command::Devnet {
            action:
                DevnetAction::Up {
                    chains,
                    block_time,
                    file,
                },
        } => devnet_up(chains, block_time, &file),
        Command::Devnet {
            action: DevnetAction::Down { file },
        } => devnet_down(&file),
        Command::Devnet {
            action: DevnetAction::Approve { account, file },
        } => runtime()?.block_on(devnet_approve(account, &file)),
        Command::Audit {
            action: AuditAction::Verify { saga, database },
        } => audit_verify(&database, saga.as_deref()),
        Command::Serve { config } => serve(&config),
        Command::Demo { intents } => {
            logging("warn");
            let ok = runtime()?.block_on(demo::run(&intents))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Quote { file, server } => runtime()?.block_on(async {
            let intent = client::intent_request(read_json(&file)?);
            let quote = server.client()?.quote(&intent).await?;
            println!("{}", serde_json::to_string_pretty(&quote)?);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Submit {
            file,
            sign_with_dev_key,
            idempotency_key,
            server,
        } => runtime()?.block_on(async {
            let client = server.client()?;
            let body = read_json(&file)?;
            let signed = match sign_with_dev_key {
                Some(k) => {
                    let key = baton_adapters::devnet::DEV_KEYS
                        .get(k)
                        .with_context(|| format!("there is no dev key {k} (0 to 9)"))?;
                    let quote = client.quote(&client::intent_request(body)).await?;
                    client::sign_quote(&quote, &key.parse()?)?
                }
                None => body,
            };
            let accepted = client.submit(&signed, idempotency_key.as_deref()).await?;
            println!("{}", accepted["intent_id"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }),
        Command::Replay {
            saga,
            json,
            with,
            resume: true,
            server,
            api_key,
            ..
        } => runtime()?.block_on(resume(
            &saga,
            &server,
            api_key.as_deref(),
            with.as_deref(),
            json,
        )),
        Command::Replay {
            saga,
            database,
            devnet,
            rpcs,
            json,
            with,
            ..
        } => runtime()?.block_on(replay(
            &saga,
            &database,
            &devnet,
            &rpcs,
            json,
            with.as_deref(),
        )),
        Command::Bench { bench } => bench::run(bench),
        Command::Status { id, follow, server } => runtime()?.block_on(status(&server, &id, follow)),
        Command::Sagas { state, server } => runtime()?.block_on(async {
            let sagas = server.client()?.sagas(state.as_deref()).await?;
            for s in sagas.as_array().into_iter().flatten() {
                println!(
                    "{} {:<12} {}",
                    s["id"].as_str().unwrap_or_default(),
                    s["state"].as_str().unwrap_or_default(),
                    s["outcome"]["outcome"].as_str().unwrap_or("-")
                );
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

async fn replay(
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
async fn resume(
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

/// The trial of `--with FILE`: the change, the devnet's venues, and the solver's and attester's
/// keys (from BATON_SOLVER_KEY / BATON_ATTESTER_KEY, else the devnet file's dev accounts).
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
        attester: key("BATON_ATTESTER_KEY", "attester")?,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logs to stderr at `default` level, or as `RUST_LOG` says.
fn logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn serve(config: &Path) -> Result<ExitCode> {
    logging("info");
    let resolved = config::Config::load(config)?.resolve()?;
    runtime()?.block_on(async {
        let mut running = server::start(resolved).await?;
        println!("baton serving on http://{}", running.addr);
        tokio::select! {
            r = running.wait() => r?,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping");
                running.stop().await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn status(server: &ServerArgs, id: &str, follow: bool) -> Result<ExitCode> {
    let client = server.client()?;
    let mut shown: Vec<String> = Vec::new();
    loop {
        let view = client.status(id).await?;
        let mut lines = vec![format!(
            "intent {id}: {}",
            view["status"].as_str().unwrap_or("?")
        )];
        lines.extend(client::describe_steps(&view, true));
        if lines != shown {
            for line in &lines {
                println!("{line}");
            }
            shown = lines;
        }
        if let Some(word) = client::outcome(&view) {
            println!("outcome: {word}");
            if let Some(reason) = view["outcome"]["reason"].as_str() {
                println!("reason: {reason}");
            }
            return Ok(if word == "failed" {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn devnet_up(chains: usize, block_time: Option<u64>, file: &Path) -> Result<ExitCode> {
    if !(1..=8).contains(&chains) {
        bail!("--chains must be between 1 and 8, not {chains}");
    }
    if file.exists() {
        bail!(
            "{} exists: a devnet is already up; run `baton devnet down` first",
            file.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let devnet = runtime.block_on(Devnet::start_detached(chains, block_time))?;
    let description = devnet.file();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let written = serde_json::to_string_pretty(&description)
        .map_err(anyhow::Error::from)
        .and_then(|text| std::fs::write(file, text + "\n").map_err(anyhow::Error::from));
    if let Err(e) = written {
        stop_detached(description.chains.iter().filter_map(|c| c.pid));
        return Err(e.context(format!("writing {}", file.display())));
    }
    for c in &description.chains {
        println!(
            "chain {} at {}: origin settler {}, destination settler {}",
            c.chain_id, c.rpc_url, c.origin_settler, c.destination_settler
        );
    }
    println!(
        "devnet up; described in {}; stop it with `baton devnet down`",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn audit_verify(database: &str, saga: Option<&str>) -> Result<ExitCode> {
    if let Some(path) = database.strip_prefix("sqlite://")
        && !Path::new(path).exists()
    {
        bail!("no saga log at {path} (nothing has run against this database yet)");
    }
    let saga = match saga {
        Some(id) => Some(SagaId(id.parse().with_context(|| {
            format!("{id:?} is not a saga id (0x followed by 64 hex digits)")
        })?)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let log = SagaLog::new(Db::connect(database).await?);
        let report = log.verify(saga).await?;
        match report.broken {
            None => {
                println!(
                    "saga log intact: {} saga(s), {} event(s), every hash chain checks",
                    report.sagas, report.events
                );
                Ok(ExitCode::SUCCESS)
            }
            Some(b) => {
                println!(
                    "saga log altered: saga {} event {}: {} ({} saga(s) and {} event(s) checked)",
                    b.saga, b.seq, b.reason, report.sagas, report.events
                );
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

async fn devnet_approve(account: usize, file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading {} (is a devnet up?)", file.display()))?;
    let description: DevnetFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a devnet file", file.display()))?;
    let key = baton_adapters::devnet::DEV_KEYS
        .get(account)
        .with_context(|| format!("there is no dev account {account} (0 to 9)"))?;
    let signer: alloy::signers::local::PrivateKeySigner = key.parse()?;
    for chain in &description.chains {
        let adapter = baton_adapters::evm::EvmAdapter::new(
            baton_adapters::evm::EvmConfig::new(
                baton_planner::ChainId(chain.chain_id),
                chain.rpc_url.parse()?,
                baton_adapters::abi::Settlers {
                    origin: chain.origin_settler,
                    destination: chain.destination_settler,
                },
            ),
            signer.clone(),
        )?;
        let pairs: Vec<_> = chain
            .tokens
            .values()
            .map(|t| (*t, chain.origin_settler))
            .collect();
        let sent = baton_engine::liquidity::approve(&adapter, &pairs).await?;
        println!(
            "chain {}: {} may pull every test token of {} ({sent} approval(s) sent)",
            chain.chain_id,
            chain.origin_settler,
            signer.address()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn devnet_down(file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading {} (is a devnet up?)", file.display()))?;
    let description: DevnetFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a devnet file", file.display()))?;
    stop_detached(description.chains.iter().filter_map(|c| c.pid));
    std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
    println!("devnet down: stopped {} chain(s)", description.chains.len());
    Ok(ExitCode::SUCCESS)
}

/// Plans every intent file; fails when a file cannot be read or a plan's result differs from the
/// file's `expect`.
fn plan_files(paths: &[PathBuf], snapshot: &Path, config: &PlannerConfig) -> Result<ExitCode> {
    let snapshot = read_snapshot(snapshot)?;
    let graph = LiquidityGraph::new(snapshot).context("building the liquidity graph")?;
    let mut unexpected = 0;
    for path in intent_files(paths)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let spec: IntentSpec = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an intent file", path.display()))?;
        let name = if spec.name.is_empty() {
            path.display().to_string()
        } else {
            spec.name.clone()
        };
        let expect = spec.expect.clone();
        println!("== {name} ({})", path.display());
        let result = spec
            .into_intent(graph.snapshot())
            .and_then(|i| plan(&graph, &i, config));
        let got = match &result {
            Ok(p) => {
                print!("{}", describe(p, graph.snapshot()));
                None
            }
            Err(e) => {
                println!("  refused [{}]: {e}", e.code());
                Some(e.code().to_string())
            }
        };
        if got != expect {
            unexpected += 1;
            println!(
                "  UNEXPECTED: the file expects {}",
                expect.as_deref().unwrap_or("a plan")
            );
        }
        println!();
    }
    if unexpected > 0 {
        bail!("{unexpected} intent(s) did not plan as their files expect");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_snapshot(path: &Path) -> Result<LiquiditySnapshot> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading snapshot {}", path.display()))?;
    let spec: SnapshotSpec = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a snapshot file", path.display()))?;
    Ok(spec.into_snapshot()?)
}

fn intent_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}
