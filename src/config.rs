//! `baton serve`'s configuration: a TOML file (kebab-case keys; an unknown key is an error), with
//! environment overrides. Secrets (the solver's private key, API key secrets) are never in the
//! file: it names the environment variable or the file that holds each. The server holds no
//! attester key: it asks the attesters (`[[attesters]]`, each its own process) over HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use baton_adapters::abi::Settlers;
use baton_adapters::devnet::DevnetFile;
use baton_api::changes::read_chain;
use baton_api::dto::config::{
    ApprovalSet, Bundle, ChainBundle, Contract, PlannerKnobs, PoolBundle, TierBundle, TokenBundle,
    Url,
};
use baton_api::{ApiKey, Role};
use baton_engine::liquidity::{Venue, VenuePool, VenueToken};
use baton_planner::{Amount, ChainId};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Config {
    /// Where to listen (`BATON_LISTEN`); 127.0.0.1:8080 by default.
    pub(crate) listen: Option<SocketAddr>,
    /// The saga log (`DATABASE_URL`); `sqlite://.baton/baton.db` by default.
    pub(crate) database: Option<String>,
    /// A devnet file (`BATON_DEVNET`): its chains are served, with anvil's dev key for the solver
    /// unless `[solver]` says otherwise, and its attesters unless `[[attesters]]` are configured.
    pub(crate) devnet: Option<PathBuf>,
    /// Calls per second to each devnet chain's RPC (default 200, as for `[[chains]]`).
    pub(crate) devnet_requests_per_second: Option<u32>,
    /// Chains, beside or instead of a devnet file's.
    #[serde(default)]
    pub(crate) chains: Vec<ChainConfig>,
    /// The solver's key.
    pub(crate) solver: Option<SecretRef>,
    /// The attesters asked to sign settlements and cancels (the origin settlers' sets say whose
    /// signatures count and how many are needed).
    #[serde(default)]
    pub(crate) attesters: Vec<AttesterEndpoint>,
    /// Milliseconds one attester has to answer one request (default 3000).
    pub(crate) attest_timeout_ms: Option<u64>,
    /// The solver's fee, basis points (default 5).
    pub(crate) solver_fee_bps: Option<u32>,
    /// Expected seconds from a fill to its attestation (default 2).
    pub(crate) route_latency_secs: Option<u64>,
    /// The largest request body, bytes (default 65536).
    pub(crate) body_limit: Option<usize>,
    /// Milliseconds a liquidity snapshot serves quotes and submissions (default 500; 0: read the
    /// chains for every request).
    pub(crate) snapshot_ttl_ms: Option<u64>,
    /// Seconds an `Idempotency-Key` answers the same intent (default 86400).
    pub(crate) idempotency_ttl_secs: Option<u64>,
    /// Event streams one API key may hold open at once (default 16).
    pub(crate) streams_per_key: Option<usize>,
    /// Seconds a saga whose step failed before the pivot is held for an operator (who may replay
    /// it with a change and resume it) before it compensates (default 0: compensate at once).
    pub(crate) hold_for_operator_secs: Option<u64>,
    /// Seconds a saga's lease lasts without renewal; another instance on the same database may
    /// take the saga over after that (default 30).
    pub(crate) lease_secs: Option<u64>,
    /// Seconds between two looks for sagas whose lease another instance let lapse (default 5).
    pub(crate) claim_every_secs: Option<u64>,
    /// Seconds over which a chain's RPC error rate is judged (default 60).
    pub(crate) health_window_secs: Option<u64>,
    /// On PostgreSQL, where instances share the solver's nonces: seconds after which a nonce
    /// handed out to an instance that never logged its transaction is handed out again, or plugged
    /// (default 10).
    pub(crate) nonce_claim_secs: Option<u64>,
    /// Blocks of the destination chain a fill must be expected to land before the order's fill
    /// deadline to be signed, beyond the block after the head and the solver's transactions queued
    /// ahead of it (default 1).
    pub(crate) fill_margin_blocks: Option<u64>,
    /// Milliseconds between two looks at each chain's head by its follower, which reads every new
    /// block once and answers balances, allowances, reserves and the solver's transactions from
    /// it (default 250; 0: no follower, every read goes to the node).
    pub(crate) follow_poll_ms: Option<u64>,
    /// API keys.
    #[serde(default)]
    pub(crate) api_keys: Vec<ApiKeyConfig>,
    /// Webhook delivery.
    #[serde(default)]
    pub(crate) webhooks: WebhooksConfig,
    /// Who approves configuration changes (a fresh deployment's first version names them).
    #[serde(default)]
    pub(crate) changes: ChangesConfig,
}

/// `[changes]`: who approves a change of the configuration this file starts; how often this
/// instance pulls.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ChangesConfig {
    /// The operator keys' addresses whose signatures approve a change.
    #[serde(default)]
    pub(crate) approvers: Vec<Address>,
    /// How many of them must sign (default: all of them; with none, an admin API key approves).
    pub(crate) quorum: Option<u32>,
    /// How often this instance pulls the versions and declares itself, seconds (default 1;
    /// `BATON_PULL_EVERY_SECS` overrides it).
    pub(crate) pull_every_secs: Option<u64>,
    /// How many of the latest finished sagas a proposed version's shadow run re-runs on anvil
    /// forks (default 50; 0: no shadow run).
    pub(crate) shadow_sagas: Option<usize>,
}

/// `[webhooks]`: how deliveries are made and retried.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct WebhooksConfig {
    /// Milliseconds an endpoint has to answer one delivery (default 10000).
    pub(crate) timeout_ms: Option<u64>,
    /// Milliseconds before the first retry; each next one doubles, with jitter (default 2000).
    pub(crate) backoff_ms: Option<u64>,
    /// The longest wait between two attempts, seconds (default 3600).
    pub(crate) backoff_max_secs: Option<u64>,
    /// Seconds a message is retried from when it was first due before its endpoint is marked
    /// failing (default 86400).
    pub(crate) retry_for_secs: Option<u64>,
    /// Whether endpoints may be on loopback, private or link-local addresses (default: only with
    /// a devnet file, whose dApps run beside it).
    pub(crate) allow_private_addresses: Option<bool>,
    /// Endpoints one API key may register (default 16).
    pub(crate) per_key: Option<usize>,
}

/// How the server reaches one chain's RPC.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// JSON-RPC over HTTP.
    pub(crate) url: String,
    /// Calls per second (the adapter's default when unset).
    pub(crate) requests_per_second: Option<u32>,
    /// The first block searched for settler events (the adapter's default when unset).
    pub(crate) logs_from_block: Option<u64>,
    /// The most blocks one `eth_getLogs` spans (the adapter's default when unset).
    pub(crate) logs_max_range: Option<u64>,
}

impl Endpoint {
    /// `url` with the adapter's defaults (a devnet's chains).
    pub(crate) fn at(url: String, requests_per_second: Option<u32>) -> Self {
        Self {
            url,
            requests_per_second,
            logs_from_block: None,
            logs_max_range: None,
        }
    }
}

/// How long startup keeps asking a chain whose calls fail on the way for its contracts' code.
const READ_CODE_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a shared nonce stays with the instance it was handed to, unlogged, by default.
pub(crate) const DEFAULT_NONCE_CLAIM: std::time::Duration = std::time::Duration::from_secs(10);

/// A confirmation tier of a chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TierConfig {
    /// The least value at risk, in wei of the chain's native coin.
    pub(crate) at_least: Amount,
    /// Confirmations from there.
    pub(crate) blocks: u32,
}

/// One chain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ChainConfig {
    /// Chain id.
    pub(crate) id: u64,
    /// JSON-RPC over HTTP.
    pub(crate) rpc_url: String,
    /// The ERC-7683 origin settler.
    pub(crate) origin_settler: Address,
    /// The ERC-7683 destination settler.
    pub(crate) destination_settler: Address,
    /// Blocks after which a block is final.
    pub(crate) finality_blocks: u32,
    /// More confirmations for more value at risk: `[{ at-least = "<wei of the native coin>",
    /// blocks = N }, …]`.
    #[serde(default)]
    pub(crate) confirmation_tiers: Vec<TierConfig>,
    /// Calls per second to the RPC (default 200).
    pub(crate) requests_per_second: Option<u32>,
    /// The first block searched for settler events: the settlers' deployment block (default 0).
    pub(crate) logs_from_block: Option<u64>,
    /// The most blocks one `eth_getLogs` may span at this RPC (default 1,000).
    pub(crate) logs_max_range: Option<u64>,
    /// Tokens the solver trades.
    pub(crate) tokens: Vec<TokenConfig>,
    /// Pools the solver may swap through.
    #[serde(default)]
    pub(crate) pools: Vec<PoolConfig>,
}

/// One token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TokenConfig {
    /// Symbol.
    pub(crate) symbol: String,
    /// Contract.
    pub(crate) address: Address,
    /// Decimals.
    pub(crate) decimals: u8,
    /// Base units per ether, to price gas.
    pub(crate) native_price: Option<Amount>,
}

/// One pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PoolConfig {
    /// Contract.
    pub(crate) address: Address,
    /// Fee, basis points.
    pub(crate) fee_bps: u32,
}

/// Where a secret is: an environment variable or a file (its first line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SecretRef {
    /// The environment variable that holds it.
    pub(crate) env: Option<String>,
    /// The file that holds it.
    pub(crate) file: Option<PathBuf>,
}

/// One attester's HTTP API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AttesterEndpoint {
    /// Its base URL, e.g. `http://127.0.0.1:8090/`.
    pub(crate) url: String,
}

/// One API key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ApiKeyConfig {
    /// Its name: who acts, in logs and the operator record.
    pub(crate) name: String,
    /// `dapp`, `operator` or `admin`.
    pub(crate) role: Role,
    /// Where its secret is.
    pub(crate) secret: SecretRef,
    /// Requests per second (default 50).
    pub(crate) requests_per_second: Option<u32>,
}

impl SecretRef {
    /// The secret; `what` names it in errors (never the value).
    pub(crate) fn read(&self, what: &str) -> Result<String> {
        let value = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .with_context(|| format!("{what}: environment variable {var} is not set"))?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("{what}: reading {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            _ => bail!("{what}: give exactly one of `env` or `file`"),
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            bail!("{what} is empty");
        }
        Ok(value)
    }
}

/// Each chain of `bundle` as the server runs it: its venue and how its RPC is reached.
pub(crate) fn chains_of(bundle: &Bundle) -> Result<Vec<(Venue, Endpoint)>> {
    let amount = |what: &str, s: &str| -> Result<Amount> {
        s.parse()
            .map_err(|_| anyhow::anyhow!("{what} {s:?} is not an amount"))
    };
    let mut chains = Vec::new();
    for c in &bundle.chains {
        let venue = Venue {
            chain: ChainId(c.id),
            settlers: Settlers {
                origin: c.origin_settler.address,
                destination: c.destination_settler.address,
            },
            finality_blocks: c.finality_blocks,
            confirmation_tiers: c
                .confirmation_tiers
                .iter()
                .map(|t| {
                    Ok(baton_planner::spec::ConfirmationTier {
                        at_least: amount("a tier's at_least", &t.at_least)?,
                        blocks: t.blocks,
                    })
                })
                .collect::<Result<_>>()?,
            tokens: c
                .tokens
                .iter()
                .map(|t| {
                    Ok(VenueToken {
                        symbol: t.symbol.clone(),
                        address: t.address,
                        decimals: t.decimals,
                        native_price: t
                            .native_price
                            .as_deref()
                            .map(|p| amount("a native price", p))
                            .transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
            pools: c
                .pools
                .iter()
                .map(|p| VenuePool {
                    address: p.address,
                    fee_bps: p.fee_bps,
                })
                .collect(),
        };
        chains.push((
            venue,
            Endpoint {
                url: c.rpc_url.0.clone(),
                requests_per_second: c.requests_per_second,
                logs_from_block: c.logs_from_block,
                logs_max_range: c.logs_max_range,
            },
        ));
    }
    Ok(chains)
}

/// The devnet file at `path` (written by `baton devnet up`).
pub(crate) fn read_devnet_file(path: &Path) -> Result<DevnetFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading devnet file {} (is a devnet up?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a devnet file", path.display()))
}

/// A signer from a hex private key; the key is not echoed in errors.
pub(crate) fn signer(what: &str, key: &str) -> Result<PrivateKeySigner> {
    key.parse()
        .map_err(|_| anyhow::anyhow!("{what} is not a 32-byte hex private key"))
}

/// Everything `serve` needs, resolved.
pub(crate) struct Resolved {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// The saga log.
    pub(crate) database: String,
    /// Per chain: its venue, RPC URL and RPC rate.
    pub(crate) chains: Vec<(Venue, Endpoint)>,
    /// The solver.
    pub(crate) solver: PrivateKeySigner,
    /// The attesters' base URLs.
    pub(crate) attesters: Vec<reqwest::Url>,
    /// How long one attester has to answer one request.
    pub(crate) attest_timeout: std::time::Duration,
    /// API keys with their secrets.
    pub(crate) api_keys: Vec<ApiKey>,
    /// API knobs.
    pub(crate) settings: baton_api::Settings,
    /// Engine knobs.
    pub(crate) engine: baton_engine::EngineConfig,
    /// How long a shared nonce stays with the instance it was handed to, unlogged.
    pub(crate) nonce_claim: std::time::Duration,
    /// Each chain's follower (none: reads go to the node).
    pub(crate) follow: Option<baton_adapters::follow::FollowConfig>,
    /// Who approves a change of the configuration.
    pub(crate) approval: ApprovalSet,
    /// How often this instance pulls the configuration versions.
    pub(crate) pull_every: std::time::Duration,
}

impl Resolved {
    /// What shapes execution here, as a configuration bundle (see `baton_engine::changes`):
    /// each chain (its RPC, settlers, finality and confirmation tiers, tokens and pools), the
    /// attesters, fees, the planner's knobs and the engine's holds and limits. Nothing secret
    /// (the solver's and API keys' secrets stay where the file names them) and nothing of this
    /// instance alone (where it listens, its database, its API keys, webhook delivery).
    ///
    /// Each contract's code hash is read from its chain now: the deployment's first version
    /// trusts the code it finds, and later versions are checked against what they declare.
    pub(crate) async fn bundle(&self) -> Result<Bundle> {
        let mut chains = Vec::new();
        for (venue, endpoint) in &self.chains {
            let chain = venue.chain;
            let mut addresses = vec![venue.settlers.origin, venue.settlers.destination];
            addresses.extend(venue.tokens.iter().map(|t| t.address));
            addresses.extend(venue.pools.iter().map(|p| p.address));
            // A provider that fails on the way (rate limits while other instances start, a node
            // restarting) is asked again for a while, as for the inventory's approvals.
            let started = std::time::Instant::now();
            let (answered, hashes) = loop {
                match read_chain(&endpoint.url, &addresses).await {
                    Ok(read) => break read,
                    Err(e) if started.elapsed() < READ_CODE_FOR => {
                        tracing::warn!(chain = chain.0, error = %e, "reading the contracts' code failed; trying again");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => bail!("chain {chain}: reading its contracts' code: {e}"),
                }
            };
            if answered != chain.0 {
                bail!("chain {chain}: its RPC answers as chain {answered}");
            }
            let code = |i: usize| {
                hashes[i].with_context(|| {
                    format!("chain {chain}: no code at {} (configured)", addresses[i])
                })
            };
            let tokens = venue.tokens.len();
            chains.push(ChainBundle {
                id: chain.0,
                rpc_url: Url(endpoint.url.clone()),
                requests_per_second: endpoint.requests_per_second,
                logs_from_block: endpoint.logs_from_block,
                logs_max_range: endpoint.logs_max_range,
                origin_settler: Contract {
                    address: venue.settlers.origin,
                    code_hash: code(0)?,
                },
                destination_settler: Contract {
                    address: venue.settlers.destination,
                    code_hash: code(1)?,
                },
                finality_blocks: venue.finality_blocks,
                confirmation_tiers: venue
                    .confirmation_tiers
                    .iter()
                    .map(|t| TierBundle {
                        at_least: t.at_least.to_string(),
                        blocks: t.blocks,
                    })
                    .collect(),
                tokens: venue
                    .tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        Ok(TokenBundle {
                            symbol: t.symbol.clone(),
                            address: t.address,
                            code_hash: code(2 + i)?,
                            decimals: t.decimals,
                            native_price: t.native_price.map(|p| p.to_string()),
                        })
                    })
                    .collect::<Result<_>>()?,
                pools: venue
                    .pools
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        Ok(PoolBundle {
                            address: p.address,
                            code_hash: code(2 + tokens + i)?,
                            fee_bps: p.fee_bps,
                        })
                    })
                    .collect::<Result<_>>()?,
            });
        }
        let planner = &self.settings.planner;
        let bundle = Bundle {
            chains,
            attesters: self.attesters.iter().map(|u| Url(u.to_string())).collect(),
            attest_timeout_ms: self.attest_timeout.as_millis() as u64,
            solver_fee_bps: self.settings.solver_fee_bps,
            route_latency_secs: self.settings.route_latency_secs,
            planner: PlannerKnobs {
                max_hops: planner.max_hops as u32,
                slippage_bps: planner.slippage_bps,
                fee_ceiling_pct: planner.fee_ceiling_pct,
                split: planner.split,
            },
            hold_for_operator_secs: self.engine.hold_for_operator.as_secs(),
            fill_margin_blocks: self.engine.fill_margin_blocks,
            approval: self.approval.clone(),
            guards: None,
        };
        bundle
            .check()
            .map_err(|e| anyhow::anyhow!("the configuration: {}", e.message))?;
        Ok(bundle)
    }

    /// Runs `bundle` (the active configuration version) instead of what the file says: its
    /// chains, attesters, fees, knobs and holds. What is this instance's own stays (where it
    /// listens, its database, its keys and secrets, webhook delivery).
    pub(crate) fn adopt(&mut self, bundle: &Bundle) -> Result<()> {
        let chains = chains_of(bundle)?;
        self.chains = chains;
        self.attesters = bundle
            .attesters
            .iter()
            .map(|u| reqwest::Url::parse(&u.0).with_context(|| format!("attester URL {:?}", u.0)))
            .collect::<Result<_>>()?;
        self.attest_timeout = std::time::Duration::from_millis(bundle.attest_timeout_ms.max(1));
        self.settings.solver_fee_bps = bundle.solver_fee_bps;
        self.settings.route_latency_secs = bundle.route_latency_secs;
        self.settings.planner = baton_planner::PlannerConfig {
            max_hops: bundle.planner.max_hops as usize,
            slippage_bps: bundle.planner.slippage_bps,
            fee_ceiling_pct: bundle.planner.fee_ceiling_pct,
            split: bundle.planner.split,
        };
        self.engine.hold_for_operator =
            std::time::Duration::from_secs(bundle.hold_for_operator_secs);
        self.engine.fill_margin_blocks = bundle.fill_margin_blocks;
        self.approval = bundle.approval.clone();
        Ok(())
    }
}

impl Config {
    /// Reads and checks `path`.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config {}", path.display()))
    }

    /// Applies environment overrides and reads every secret.
    pub(crate) fn resolve(mut self) -> Result<Resolved> {
        if let Ok(listen) = std::env::var("BATON_LISTEN") {
            self.listen = Some(
                listen
                    .parse()
                    .with_context(|| format!("BATON_LISTEN={listen:?} is not HOST:PORT"))?,
            );
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            self.database = Some(url);
        }
        if let Ok(devnet) = std::env::var("BATON_DEVNET") {
            self.devnet = Some(devnet.into());
        }
        if let Ok(secs) = std::env::var("BATON_PULL_EVERY_SECS") {
            self.changes.pull_every_secs = Some(secs.parse().with_context(|| {
                format!("BATON_PULL_EVERY_SECS={secs:?} is not a number of seconds")
            })?);
        }
        let pull_every = match self.changes.pull_every_secs {
            None => baton_api::changes::PULL_EVERY,
            Some(secs @ 1..=3600) => std::time::Duration::from_secs(secs),
            Some(secs) => bail!("[changes] pull-every-secs = {secs}: pull every 1 to 3600 seconds"),
        };
        let mut chains = Vec::new();
        let mut dev_key = None;
        let mut attesters: Vec<String> = self.attesters.iter().map(|a| a.url.clone()).collect();
        if let Some(path) = &self.devnet {
            let file = read_devnet_file(path)?;
            for c in &file.chains {
                chains.push((
                    baton_engine::liquidity::devnet_venue(c),
                    Endpoint::at(c.rpc_url.clone(), self.devnet_requests_per_second),
                ));
            }
            let key = |role: &str| {
                file.accounts
                    .get(role)
                    .map(|a| a.dev_private_key.clone())
                    .with_context(|| format!("the devnet file has no {role} account"))
            };
            dev_key = Some(key("solver")?);
            if attesters.is_empty() {
                attesters = file.attesters.iter().map(|a| a.url.clone()).collect();
            }
        }
        for c in self.chains {
            if chains.iter().any(|(v, _)| v.chain.0 == c.id) {
                bail!("chain {} is configured twice", c.id);
            }
            let venue = Venue {
                chain: ChainId(c.id),
                settlers: Settlers {
                    origin: c.origin_settler,
                    destination: c.destination_settler,
                },
                finality_blocks: c.finality_blocks,
                confirmation_tiers: c
                    .confirmation_tiers
                    .iter()
                    .map(|t| baton_planner::spec::ConfirmationTier {
                        at_least: t.at_least,
                        blocks: t.blocks,
                    })
                    .collect(),
                tokens: c
                    .tokens
                    .into_iter()
                    .map(|t| VenueToken {
                        symbol: t.symbol,
                        address: t.address,
                        decimals: t.decimals,
                        native_price: t.native_price,
                    })
                    .collect(),
                pools: c
                    .pools
                    .into_iter()
                    .map(|p| VenuePool {
                        address: p.address,
                        fee_bps: p.fee_bps,
                    })
                    .collect(),
            };
            chains.push((
                venue,
                Endpoint {
                    url: c.rpc_url,
                    requests_per_second: c.requests_per_second,
                    logs_from_block: c.logs_from_block,
                    logs_max_range: c.logs_max_range,
                },
            ));
        }
        if chains.is_empty() {
            bail!("no chains: name a devnet file (`devnet = …`) or configure [[chains]]");
        }
        let solver = match (&self.solver, dev_key) {
            (Some(s), _) => s.read("the solver key")?,
            (None, Some(dev)) => dev,
            (None, None) => bail!("configure the [solver] key (env or file)"),
        };
        if attesters.is_empty() {
            bail!(
                "no attesters: configure [[attesters]] (url = …), or name a devnet file that lists \
                 them (`baton devnet up` starts three)"
            );
        }
        let attesters = attesters
            .iter()
            .map(|url| reqwest::Url::parse(url).with_context(|| format!("attester URL {url:?}")))
            .collect::<Result<Vec<_>>>()?;
        let mut api_keys = Vec::new();
        for k in &self.api_keys {
            api_keys.push(ApiKey {
                name: k.name.clone(),
                role: k.role,
                secret: k
                    .secret
                    .read(&format!("the secret of API key {:?}", k.name))?,
                per_second: std::num::NonZeroU32::new(k.requests_per_second.unwrap_or(50))
                    .context("requests-per-second must be at least 1")?,
            });
        }
        if api_keys.is_empty() {
            bail!("no API keys: configure at least one [[api-keys]]");
        }
        let defaults = baton_api::Settings::default();
        let approval = ApprovalSet {
            quorum: self
                .changes
                .quorum
                .unwrap_or(self.changes.approvers.len() as u32),
            approvers: self.changes.approvers,
        };
        Ok(Resolved {
            approval,
            pull_every,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            database: self
                .database
                .unwrap_or_else(|| crate::cli::DEFAULT_DATABASE.to_owned()),
            chains,
            solver: signer("the solver key", &solver)?,
            attesters,
            attest_timeout: std::time::Duration::from_millis(
                self.attest_timeout_ms.unwrap_or(3_000).max(1),
            ),
            api_keys,
            settings: baton_api::Settings {
                solver_fee_bps: self.solver_fee_bps.unwrap_or(defaults.solver_fee_bps),
                route_latency_secs: self
                    .route_latency_secs
                    .unwrap_or(defaults.route_latency_secs),
                body_limit: self.body_limit.unwrap_or(defaults.body_limit),
                snapshot_ttl: self
                    .snapshot_ttl_ms
                    .map_or(defaults.snapshot_ttl, std::time::Duration::from_millis),
                idempotency_ttl: self
                    .idempotency_ttl_secs
                    .map_or(defaults.idempotency_ttl, std::time::Duration::from_secs),
                streams_per_key: self.streams_per_key.unwrap_or(defaults.streams_per_key),
                shadow_sagas: self.changes.shadow_sagas.unwrap_or(defaults.shadow_sagas),
                webhooks: {
                    let w = &self.webhooks;
                    let defaults = defaults.webhooks.clone();
                    let ms = std::time::Duration::from_millis;
                    let secs = std::time::Duration::from_secs;
                    baton_api::webhooks::WebhookSettings {
                        timeout: w.timeout_ms.map_or(defaults.timeout, |t| ms(t.max(1))),
                        backoff: w.backoff_ms.map_or(defaults.backoff, |b| ms(b.max(1))),
                        backoff_max: w.backoff_max_secs.map_or(defaults.backoff_max, secs),
                        retry_for: w.retry_for_secs.map_or(defaults.retry_for, secs),
                        allow_private: w.allow_private_addresses.unwrap_or(self.devnet.is_some()),
                        per_key: w.per_key.unwrap_or(defaults.per_key),
                        ..defaults
                    }
                },
                ..defaults
            },
            engine: {
                let defaults = baton_engine::EngineConfig::default();
                let secs = std::time::Duration::from_secs;
                baton_engine::EngineConfig {
                    hold_for_operator: secs(self.hold_for_operator_secs.unwrap_or(0)),
                    lease: self.lease_secs.map_or(defaults.lease, secs),
                    claim_every: self.claim_every_secs.map_or(defaults.claim_every, secs),
                    health_window: self.health_window_secs.map_or(defaults.health_window, secs),
                    fill_margin_blocks: self
                        .fill_margin_blocks
                        .unwrap_or(defaults.fill_margin_blocks),
                    ..defaults
                }
            },
            nonce_claim: self.nonce_claim_secs.map_or(DEFAULT_NONCE_CLAIM, |s| {
                std::time::Duration::from_secs(s.max(1))
            }),
            follow: match self.follow_poll_ms {
                Some(0) => None,
                poll => Some(baton_adapters::follow::FollowConfig {
                    poll: poll.map_or(
                        baton_adapters::follow::FollowConfig::default().poll,
                        std::time::Duration::from_millis,
                    ),
                    ..Default::default()
                }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_example_config_parses_and_unknown_keys_are_refused() {
        let config: Config = toml::from_str(include_str!("../baton.example.toml")).unwrap();
        assert_eq!(config.api_keys.len(), 3);
        assert_eq!(config.api_keys[1].role, Role::Operator);
        let err = toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisten-port = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen-port"), "{err}");
    }

    #[test]
    fn a_chains_confirmation_tiers_parse_from_kebab_case_keys() {
        let chain: ChainConfig = toml::from_str(
            r#"
id = 1
rpc-url = "http://127.0.0.1:8545"
origin-settler = "0x0000000000000000000000000000000000000001"
destination-settler = "0x0000000000000000000000000000000000000002"
finality-blocks = 2
confirmation-tiers = [{ at-least = "10000000000000000000", blocks = 6 }]
tokens = []
"#,
        )
        .unwrap();
        assert_eq!(chain.confirmation_tiers.len(), 1);
        assert_eq!(chain.confirmation_tiers[0].blocks, 6);
        assert_eq!(
            chain.confirmation_tiers[0].at_least.raw(),
            alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(19))
        );
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_are_not_echoed() {
        let missing = SecretRef {
            env: Some("BATON_TEST_SURELY_UNSET_VARIABLE".into()),
            file: None,
        };
        let err = missing.read("the solver key").unwrap_err().to_string();
        assert!(err.contains("BATON_TEST_SURELY_UNSET_VARIABLE"), "{err}");
        let both = SecretRef {
            env: Some("X".into()),
            file: Some("y".into()),
        };
        assert!(both.read("k").is_err());
        let err = signer("the solver key", "0xnot-a-key-but-a-secret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("not-a-key-but-a-secret"), "{err}");
    }
}
