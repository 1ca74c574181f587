//! The command line as clap parses it: [`Cli`], its [`Command`]s and their arguments. What each
//! command does is in [`crate::commands`].

use std::path::PathBuf;

use anyhow::Result;
use baton_planner::PlannerConfig;
use clap::{Args, Parser, Subcommand};

use crate::client::Client;

/// baton: a cross-network execution coordinator (an intent solver).
#[derive(Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        bench: baton_bench::Bench,
    },
    /// Check the saga log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Run one attester (its own key, RPC endpoints and state) that signs fills and cancels for
    /// the origin settlers once they are final and match the order.
    Attester {
        #[command(subcommand)]
        action: AttesterAction,
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
        /// saga failed and run there; the solver's key comes from the devnet file (or
        /// BATON_SOLVER_KEY), and the trial makes its own attester on the forks.
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
    /// Configuration versions: propose, show, approve, schedule, reject, override a shadow run's
    /// regressions, roll back, status.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
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

/// `baton config …`: configuration versions through their lifecycle (operator keys; approving
/// needs an approver's key).
#[derive(Subcommand)]
pub(crate) enum ConfigAction {
    /// The active version, the versions in progress and what each instance runs.
    Status {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// One version (id, number, or `active`) with its record and approvals; without one, every
    /// version. `--bundle` prints only its bundle: the file to edit and propose.
    Show {
        /// The version: its id, its number, or `active`.
        version: Option<String>,
        /// Print only the bundle (JSON).
        #[arg(long, requires = "version")]
        bundle: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Propose a bundle (a JSON file, as `show --bundle` prints one) as a change of the active
    /// version; the instances validate it. Exits 1 when it is rejected.
    Propose {
        /// The bundle file.
        file: PathBuf,
        /// Wait (up to 60 s) for its validation and print the outcome.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Approve a validated version: checks that its bundle hashes to its id, and signs its
    /// approval message with an approver's key (EIP-191). Without `--key-file` or
    /// BATON_APPROVER_KEY, approves with the API key alone (an admin key, where the active version
    /// names no approvers).
    Approve {
        /// The version: its id or number.
        version: String,
        /// A file whose first line is the approver's private key (hex).
        #[arg(long, value_name = "FILE", conflicts_with = "key_env")]
        key_file: Option<PathBuf>,
        /// An environment variable that holds the approver's private key.
        #[arg(long, value_name = "VAR", default_value = "BATON_APPROVER_KEY")]
        key_env: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Schedule an approved version to activate: now, at a unix time, in some seconds, or at a
    /// chain's block.
    Schedule {
        /// The version: its id or number.
        version: String,
        /// Unix seconds.
        #[arg(long, conflicts_with = "in_secs")]
        at: Option<u64>,
        /// Seconds from now.
        #[arg(long = "in", value_name = "SECS", conflicts_with = "at_block")]
        in_secs: Option<u64>,
        /// At a block of a chain: CHAIN:BLOCK (once the chain's head reaches it).
        #[arg(long, value_name = "CHAIN:BLOCK", conflicts_with = "at")]
        at_block: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Reject a version before it is active.
    Reject {
        /// The version: its id or number.
        version: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Override the regressions a version's shadow run found, so it may be approved.
    Override {
        /// The version: its id or number.
        version: String,
        /// Why (recorded, with who).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Propose the rollback of the active version to the one it changed (or `--to`); it then
    /// goes through validation, approval and scheduling like any change.
    Rollback {
        /// A version that was active: its id or number.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the server is, and the API key to use.
#[derive(Args)]
pub(crate) struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "BATON_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The API key.
    #[arg(long, env = "BATON_API_KEY", hide_env_values = true)]
    api_key: String,
}

impl ServerArgs {
    /// A client of the server with the key.
    pub(crate) fn client(&self) -> Result<Client> {
        Client::new(&self.server, &self.api_key)
    }
}

#[derive(Subcommand)]
pub(crate) enum AttesterAction {
    /// Serves the attester's HTTP API (`POST /v1/fills`, `POST /v1/cancels`, `GET /v1/health`,
    /// `GET /metrics`) as its TOML config says, until ctrl-c or SIGTERM.
    Serve {
        /// The attester's config (listen, database, key = { env | file }, confirmations, devnet,
        /// [[chains]]).
        #[arg(long, env = "BATON_ATTESTER_CONFIG", default_value = "attester.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditAction {
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
pub(crate) enum DevnetAction {
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
    /// Deploy another settler pair on each chain (the same attester set), as a settler upgrade
    /// would; record it in the devnet file and restart the devnet's attesters, which then trust
    /// both pairs. Prints each chain's new settlers with their code hashes, as a configuration
    /// bundle names them (`baton config propose`).
    Settlers {
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

/// The devnet file `baton devnet up` writes by default.
pub(crate) const DEVNET_FILE: &str = ".baton/devnet.json";
