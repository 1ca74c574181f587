//! `baton demo`: the whole path a dApp sees, on real chains. Two anvil chains with the contracts,
//! the server on SQLite, and the example intents of `fixtures/intents/` quoted, signed with the
//! user's dev key (as a wallet signs typed data), submitted and followed to their outcomes over
//! REST. The last one has its destination pools drained right after it is submitted, so it cannot
//! succeed and must end Refunded. Three attesters, each a `baton attester serve` process, attest
//! the fills; the origin settlers release each escrow on any two of their signatures. Everything
//! started is stopped at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use anyhow::{Context, Result, bail};
use baton_adapters::devnet::{DEV_KEYS, Devnet, SOLVER, USER, dev_signer};
use baton_adapters::port::{ChainAdapter, Fees, Op, TxRequest, TxStatus};
use baton_api::wallet::sign_quote;
use baton_api::{ApiKey, Role};
use baton_engine::liquidity;
use baton_planner::OrderId;
use serde_json::Value;

use crate::client::{Client, describe_steps, intent_request, outcome};
use crate::config::Resolved;
use crate::server;

/// The example that has its pools drained after submission.
const DRAINED: &str = "06-pool-drained.json";
/// Where the demo's saga log goes (replaced at each run).
const DEMO_DB: &str = ".baton/demo.db";
/// Where the demo's attesters keep their configs, state and logs (replaced at each run).
const DEMO_ATTESTERS: &str = ".baton/demo-attesters";

struct Tracked {
    name: String,
    file: String,
    id: String,
    quote: Value,
    submitted: Instant,
    expect: &'static str,
    last: Vec<String>,
    done: Option<(String, Duration)>,
}

/// Runs the demo over the intent files in `intents`; fails when an outcome is not the expected
/// one.
pub(crate) async fn run(intents: &Path) -> Result<bool> {
    println!("starting two anvil chains (1 s blocks) and deploying the contracts …");
    let devnet = Devnet::start(2, Some(1)).await?;
    let file = devnet.file();
    for c in &file.chains {
        println!("  chain {} at {}", c.chain_id, c.rpc_url);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{DEMO_DB}{suffix}"));
    }
    // Three attesters, each its own process with its own state; any two settle an order.
    let _ = std::fs::remove_dir_all(DEMO_ATTESTERS);
    std::fs::create_dir_all(DEMO_ATTESTERS)?;
    let devnet_file = Path::new(DEMO_ATTESTERS).join("devnet.json");
    std::fs::write(&devnet_file, serde_json::to_string_pretty(&file)?)?;
    let attesters = crate::attesters::spawn(&devnet_file, Path::new(DEMO_ATTESTERS)).await?;
    for a in &attesters.attesters {
        println!("  attester {} at {}", a.address, a.url);
    }
    let secret = format!("demo-{:032x}", fastrand::u128(..));
    let config = Resolved {
        listen: ([127, 0, 0, 1], 0).into(),
        database: format!("sqlite://{DEMO_DB}"),
        chains: file
            .chains
            .iter()
            .map(|c| {
                let endpoint = crate::config::Endpoint::at(c.rpc_url.clone(), None);
                (liquidity::devnet_venue(c), endpoint)
            })
            .collect(),
        solver: DEV_KEYS[SOLVER].parse()?,
        attesters: attesters
            .attesters
            .iter()
            .map(|a| a.url.parse())
            .collect::<Result<_, _>>()?,
        attest_timeout: Duration::from_secs(3),
        api_keys: vec![ApiKey {
            name: "demo".into(),
            role: Role::Operator,
            secret: secret.clone(),
            per_second: std::num::NonZeroU32::new(1000).context("rate")?,
        }],
        // Four intents swap through the same pools at once: a wider slippage bound than the
        // default 50 bps keeps the later swaps inside it (every fill still meets its minimum).
        settings: baton_api::Settings {
            planner: baton_planner::PlannerConfig {
                slippage_bps: 150,
                ..Default::default()
            },
            ..Default::default()
        },
        engine: Default::default(),
        nonce_claim: crate::config::DEFAULT_NONCE_CLAIM,
        follow: Some(Default::default()),
        pull_every: baton_api::changes::PULL_EVERY,
        approval: baton_api::dto::config::ApprovalSet {
            approvers: Vec::new(),
            quorum: 0,
        },
    };
    let running = server::start(config).await?;
    println!(
        "server on http://{} (saga log sqlite://{DEMO_DB})",
        running.addr
    );
    let client = Client::new(&format!("http://{}", running.addr), &secret)?;

    // The user lets each origin settler pull its tokens, as a dApp asks a wallet to.
    let mut users = BTreeMap::new();
    for chain in &devnet.chains {
        let user = chain.adapter(USER)?;
        let pairs: Vec<_> = chain
            .tokens
            .values()
            .map(|t| (*t, chain.origin_settler))
            .collect();
        liquidity::approve(&user, &pairs).await?;
        users.insert(chain.chain_id, user);
    }
    let signer = dev_signer(USER);

    let files = crate::commands::plan::intent_files(&[intents.to_path_buf()])?;
    let mut first = Vec::new();
    let mut last = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let spec: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let name = spec["name"].as_str().unwrap_or("intent").to_owned();
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if spec.get("expect").is_some() {
            println!("- {name}: skipped (a planning example over the fixture snapshot)");
            continue;
        }
        let entry = (name, file_name, intent_request(spec));
        if entry.1 == DRAINED {
            last.push(entry);
        } else {
            first.push(entry);
        }
    }

    let mut tracked = Vec::new();
    let mut failures = Vec::new();
    println!("\nsubmitting {} intents at once …", first.len());
    for (name, file, intent) in first {
        match submit(&client, &signer, &name, &file, &intent, "fulfilled").await {
            Ok(t) => tracked.push(t),
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    follow(&client, &mut tracked).await?;
    let mut drained = Vec::new();
    for (name, file, intent) in last {
        println!("\nsubmitting {name:?}, then draining the destination's WETH pools …");
        let swaps = prepare_drain(&devnet, &users).await?;
        match submit(&client, &signer, &name, &file, &intent, "refunded").await {
            Ok(t) => {
                drain(&devnet, &users, swaps).await?;
                drained.push(t);
            }
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    follow(&client, &mut drained).await?;
    tracked.extend(drained);

    println!("\n== outcomes");
    let mut ok = failures.is_empty();
    for t in &tracked {
        let (word, took) = t
            .done
            .clone()
            .unwrap_or_else(|| ("unfinished".into(), t.submitted.elapsed()));
        let delivered = if word == "refunded" {
            "nothing (inputs refunded)".to_owned()
        } else {
            delivered(&devnet, t)
                .await
                .unwrap_or_else(|e| format!("? ({e})"))
        };
        let expected = word == t.expect;
        ok &= expected;
        println!(
            "{} {:<30} {:<10} delivered {:<34} in {:>5.1} s (critical path {} s){}",
            if expected { "✓" } else { "✗" },
            t.name,
            word,
            delivered,
            took.as_secs_f64(),
            t.quote["eta_secs"],
            if expected {
                String::new()
            } else {
                format!(" — expected {}", t.expect)
            }
        );
    }
    for f in &failures {
        println!("✗ {f}");
    }
    running.stop().await?;
    drop(attesters);
    drop(devnet);
    println!(
        "\nstopped the server, the attesters and both chains; the saga log stays in {DEMO_DB} (`baton audit verify --database sqlite://{DEMO_DB}`)"
    );
    Ok(ok)
}

async fn submit(
    client: &Client,
    signer: &alloy::signers::local::PrivateKeySigner,
    name: &str,
    file: &str,
    intent: &Value,
    expect: &'static str,
) -> Result<Tracked> {
    let quote = client.quote(intent).await.context("quoting")?;
    let signed = sign_quote(&quote, signer)?;
    let accepted = client
        .submit(&signed, Some(&format!("demo-{file}")))
        .await
        .context("submitting")?;
    let id = accepted["intent_id"]
        .as_str()
        .context("no intent id")?
        .to_owned();
    let outputs: Vec<String> = quote["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "≥ {} {} on {}",
                o["min_amount"].as_str().unwrap_or("?"),
                o["token"].as_str().unwrap_or("?"),
                o["chain"]
            )
        })
        .collect();
    println!(
        "- {name}: {} steps, {} order(s), {}, ETA {} s → intent {}…",
        quote["steps"].as_array().map_or(0, Vec::len),
        quote["orders"].as_array().map_or(0, Vec::len),
        outputs.join(", "),
        quote["eta_secs"],
        &id[..14]
    );
    Ok(Tracked {
        name: name.to_owned(),
        file: file.to_owned(),
        id,
        quote,
        submitted: Instant::now(),
        expect,
        last: Vec::new(),
        done: None,
    })
}

/// Polls every tracked intent until each has an outcome (or five minutes pass), printing each
/// step change.
async fn follow(client: &Client, tracked: &mut [Tracked]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while tracked.iter().any(|t| t.done.is_none()) && Instant::now() < deadline {
        for t in tracked.iter_mut().filter(|t| t.done.is_none()) {
            let view = client.status(&t.id).await?;
            let lines = describe_steps(&view, false);
            for (i, line) in lines.iter().enumerate() {
                if t.last.get(i) != Some(line) {
                    println!("[{}]{line}", t.file.trim_end_matches(".json"));
                }
            }
            t.last = lines;
            if let Some(word) = outcome(&view) {
                t.done = Some((word.to_owned(), t.submitted.elapsed()));
                println!("[{}] outcome: {word}", t.file.trim_end_matches(".json"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Someone's approvals to swap a large amount into both WETH pools of the destination (chain
/// 1002); returns the swaps, for [`drain`].
async fn prepare_drain(
    devnet: &Devnet,
    users: &BTreeMap<u64, baton_adapters::evm::EvmAdapter>,
) -> Result<Vec<Op>> {
    let chain = devnet.chains.get(1).context("no second chain")?;
    let user = users.get(&chain.chain_id).context("no user adapter")?;
    let mut pairs = Vec::new();
    let mut swaps = Vec::new();
    for (pool, token, decimals) in [("USDC/WETH", "USDC", 6), ("DAI/WETH", "DAI", 18)] {
        let pool = chain.pools[pool];
        let token = chain.tokens[token];
        pairs.push((token, pool));
        swaps.push(Op::Swap {
            pool,
            token_in: token,
            amount_in: U256::from(5_000_000u64) * U256::from(10u64).pow(U256::from(decimals)),
            min_out: U256::ZERO,
            to: user.account(),
        });
    }
    liquidity::approve(user, &pairs).await?;
    Ok(swaps)
}

/// Sends the swaps of [`prepare_drain`] at once (they land in the next block, before the saga's
/// own swap, which waits for its open) and waits for them: the pools' price moves far beyond the
/// plan's slippage bound.
async fn drain(
    devnet: &Devnet,
    users: &BTreeMap<u64, baton_adapters::evm::EvmAdapter>,
    swaps: Vec<Op>,
) -> Result<()> {
    let chain = devnet.chains.get(1).context("no second chain")?;
    let user = users.get(&chain.chain_id).context("no user adapter")?;
    // A generous tip: in the block that may also hold the solver's swap, these come first.
    let base_fee = user.conditions().await?.base_fee;
    let fees = Fees {
        gas_limit: 300_000,
        max_fee_per_gas: base_fee.saturating_mul(2) + 100_000_000_000,
        max_priority_fee_per_gas: 100_000_000_000,
    };
    let mut sent = Vec::new();
    for op in swaps {
        let tx = user.prepare(TxRequest::new(op, fees)).await?;
        user.broadcast(&tx).await?;
        sent.push(tx);
    }
    for tx in sent {
        loop {
            match user.status(&tx, None).await? {
                TxStatus::Included(inc) if inc.success => break,
                TxStatus::Included(inc) => {
                    bail!("draining a pool reverted: {:?}", inc.revert_reason)
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    println!(
        "  drained: 5,000,000 USDC and 5,000,000 DAI swapped into the WETH pools of chain {}",
        chain.chain_id
    );
    Ok(())
}

/// What the destination settler's `Filled` events say was delivered for `t`'s intent.
async fn delivered(devnet: &Devnet, t: &Tracked) -> Result<String> {
    let lead: OrderId = OrderId(
        t.quote["orders"][0]["order_id"]
            .as_str()
            .context("no order id")?
            .parse()?,
    );
    let mut parts = Vec::new();
    for output in t.quote["outputs"].as_array().into_iter().flatten() {
        let chain_id = output["chain"].as_u64().context("chain")?;
        let symbol = output["token"].as_str().unwrap_or("?");
        let chain = devnet
            .chains
            .iter()
            .find(|c| c.chain_id == chain_id)
            .context("unknown chain")?;
        let evidence = chain.adapter(SOLVER)?.evidence(lead).await?;
        let decimals = baton_adapters::devnet::TOKENS
            .iter()
            .find(|(s, _)| *s == symbol)
            .map_or(18, |(_, d)| *d);
        let amount: U256 = evidence
            .fills
            .iter()
            .filter(|f| Some(f.token) == chain.tokens.get(symbol).copied())
            .map(|f| f.amount)
            .fold(U256::ZERO, |a, b| a + b);
        parts.push(format!("{} {symbol}", units(amount, decimals)));
    }
    Ok(parts.join(" + "))
}

/// `amount` base units as a decimal with up to four places.
fn units(amount: U256, decimals: u8) -> String {
    let scale = U256::from(10u64).pow(U256::from(decimals));
    let whole = amount / scale;
    let frac = (amount % scale) * U256::from(10_000u64) / scale;
    format!("{whole}.{:04}", frac.to::<u64>())
}
