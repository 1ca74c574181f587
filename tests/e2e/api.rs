//! The REST API end to end: `baton serve` as a process on two anvil chains it did not start,
//! driven over HTTP (and through the CLI) as a dApp and an operator would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::devnet::{Devnet, SOLVER, USER, dev_signer};
use baton_adapters::port::{ChainAdapter, Fees, Op, TxRequest, TxStatus};
use baton_engine::liquidity;
use serde_json::{Value, json};

const DAPP: &str = "dapp-secret-0123456789";
const OPS: &str = "operator-secret-0123456789";
const ADMIN: &str = "admin-secret-0123456789";
const SLOW: &str = "slow-secret-0123456789";
const RECIPIENT: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// Two anvil chains, a config for `baton serve` over them, and a folder for its saga log.
struct Stack {
    devnet: Devnet,
    dir: PathBuf,
    config: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `baton serve` process, killed when dropped (also when a test panics).
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `baton args` with `env`; asserts it succeeds; returns its standard output.
fn cli(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "baton {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    async fn new(name: &str) -> Self {
        Self::with_config(name, "").await
    }

    /// A stack whose `baton serve` config also has `extra` (top-level keys).
    async fn with_config(name: &str, extra: &str) -> Self {
        let devnet = Devnet::start(2, Some(1)).await.unwrap();
        let dir = std::env::temp_dir().join(format!("baton-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let devnet_file = dir.join("devnet.json");
        std::fs::write(&devnet_file, serde_json::to_string(&devnet.file()).unwrap()).unwrap();
        std::fs::write(dir.join("slow.key"), format!("{SLOW}\n")).unwrap();
        let config = dir.join("baton.toml");
        std::fs::write(
            &config,
            format!(
                r#"
database = "sqlite://{db}"
devnet = "{devnet}"
body-limit = 16384
{extra}

[[api-keys]]
name = "dapp"
role = "dapp"
secret = {{ env = "TEST_DAPP_KEY" }}

[[api-keys]]
name = "ops"
role = "operator"
secret = {{ env = "TEST_OPS_KEY" }}

[[api-keys]]
name = "admin"
role = "admin"
secret = {{ env = "TEST_ADMIN_KEY" }}

[[api-keys]]
name = "slow"
role = "dapp"
requests-per-second = 1
secret = {{ file = "{slow}" }}
"#,
                db = dir.join("baton.db").display(),
                devnet = devnet_file.display(),
                slow = dir.join("slow.key").display(),
            ),
        )
        .unwrap();
        // The user lets the origin settlers pull its USDC and WETH (not its DAI on 1001).
        for chain in &devnet.chains {
            let user = chain.adapter(USER).unwrap();
            let mut pairs = vec![
                (chain.tokens["USDC"], chain.origin_settler),
                (chain.tokens["WETH"], chain.origin_settler),
            ];
            if chain.chain_id != 1001 {
                pairs.push((chain.tokens["DAI"], chain.origin_settler));
            }
            liquidity::approve(&user, &pairs).await.unwrap();
        }
        Self {
            devnet,
            dir,
            config,
        }
    }

    /// Starts `baton serve` and waits until it answers.
    async fn serve(&self) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("BATON_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .env("TEST_DAPP_KEY", DAPP)
            .env("TEST_OPS_KEY", OPS)
            .env("TEST_ADMIN_KEY", ADMIN)
            .env("BATON_INSTANCE", "e2e")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", server.base)).await
                && r.status().is_success()
            {
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "baton serve did not come up"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `baton replay ID --json` on this stack's saga log and chains.
    fn replay(&self, id: &str) -> Value {
        let database = format!("sqlite://{}", self.dir.join("baton.db").display());
        let devnet = self.dir.join("devnet.json");
        let args = ["replay", id, "--json", "--database", &database, "--devnet"];
        let mut args: Vec<&str> = args.to_vec();
        args.push(devnet.to_str().unwrap());
        serde_json::from_str(&cli(&args, &[])).unwrap()
    }

    fn user(&self, chain: usize) -> baton_adapters::evm::EvmAdapter {
        self.devnet.chains[chain].adapter(USER).unwrap()
    }
}

/// An HTTP call: (status, JSON body).
async fn call(method: &str, url: String, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut request = match method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        other => http.request(other.parse().unwrap(), url),
    };
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn intent(file: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/intents/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("expect");
    v
}

/// Signs a quote's orders from its typed data, as a wallet would.
fn sign(quote: &Value, signer: &PrivateKeySigner) -> Value {
    let orders: Vec<Value> = quote["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let typed: TypedData = serde_json::from_value(o["typed_data"].clone()).unwrap();
            let sig = signer
                .sign_hash_sync(&typed.eip712_signing_hash().unwrap())
                .unwrap();
            json!({ "order": o["order"], "signature": format!("0x{}", alloy::primitives::hex::encode(sig.as_bytes())) })
        })
        .collect();
    json!({ "orders": orders })
}

async fn quote_and_sign(server: &Server, intent: &Value, signer: &PrivateKeySigner) -> Value {
    let (status, quote) = call(
        "POST",
        format!("{}/v1/quotes", server.base),
        Some(DAPP),
        Some(intent.clone()),
    )
    .await;
    assert_eq!(status, 200, "{quote}");
    sign(&quote, signer)
}

/// Polls the intent until it has an outcome; returns its view.
async fn outcome(server: &Server, id: &str) -> Value {
    view_until(server, id, |view| !view["outcome"].is_null()).await
}

/// Polls the intent until its view satisfies `done` (two minutes at most); returns the view.
async fn view_until(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, view) = call(
            "GET",
            format!("{}/v1/intents/{id}", server.base),
            Some(DAPP),
            None,
        )
        .await;
        assert_eq!(status, 200, "{view}");
        if done(&view) {
            return view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not there in two minutes: {view}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn balance(adapter: &dyn ChainAdapter, token: Address, who: Address) -> U256 {
    adapter.balance(token, who).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dapp_submits_with_the_cli_follows_the_events_and_the_recipient_is_paid() {
    let stack = Stack::new("fulfilled").await;
    let server = stack.serve().await;
    let dest = &stack.devnet.chains[1];
    let recipient: Address = RECIPIENT.parse().unwrap();
    let solver = dest.adapter(SOLVER).unwrap();
    let weth_before = balance(&solver, dest.tokens["WETH"], recipient).await;

    // `baton submit --sign-with-dev-key 1`: quote, sign the typed data, submit.
    let file = format!(
        "{}/fixtures/intents/01-usdc-a-to-weth-b.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let id = cli(
        &["submit", &file, "--sign-with-dev-key", "1"],
        &[("BATON_SERVER", &server.base), ("BATON_API_KEY", DAPP)],
    )
    .trim()
    .to_owned();
    assert_eq!(id.len(), 66, "an intent id: {id}");

    // The events stream, from the first event to the outcome, then it ends.
    let response = reqwest::Client::new()
        .get(format!("{}/v1/intents/{id}/events", server.base))
        .bearer_auth(DAPP)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(120), response.text())
        .await
        .expect("the stream ends at the outcome")
        .unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(kinds.first(), Some(&"started"), "{text}");
    assert_eq!(kinds.last(), Some(&"decided"), "{text}");
    assert!(kinds.contains(&"tx_signed") && kinds.contains(&"step_final"));
    assert!(text.contains(r#""outcome":"fulfilled""#), "{text}");

    // `baton status --follow` agrees, and the status shows every step with its transaction.
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["status", &id, "--follow"])
        .env("BATON_SERVER", &server.base)
        .env("BATON_API_KEY", DAPP)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("outcome: fulfilled"), "{stdout}");
    let view = outcome(&server, &id).await;
    let fill = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "fill")
        .unwrap();
    assert_eq!(fill["state"], "final");
    assert!(fill["tx"].is_string() && fill["confirmations"].as_u64().unwrap() >= 1);

    let weth_after = balance(&solver, dest.tokens["WETH"], recipient).await;
    assert!(
        weth_after - weth_before >= U256::from(390_000_000_000_000_000u64),
        "the recipient got {}",
        weth_after - weth_before
    );

    // Metrics count the outcome.
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("baton_saga_outcomes_total") && metrics.contains("outcome=\"fulfilled\""),
        "{metrics}"
    );
    assert!(metrics.contains("baton_rpc_calls_total"));

    // Replayed on forks, the fulfilled saga ends exactly as recorded.
    let report = stack.replay(&id);
    assert_eq!(report["reproduced"], true, "{report:#}");
    assert!(report["first_divergence"].is_null() && report["failing_step"].is_null());
    assert!(report["steps"].as_array().unwrap().len() >= 3, "{report:#}");
}

/// Submits `06-pool-drained.json` as the user and drains the destination's USDC/WETH pool before
/// the solver's swap can run (its slippage bound then reverts it); returns the intent id.
async fn submit_and_drain(stack: &Stack, server: &Server) -> String {
    let dest = &stack.devnet.chains[1];
    let user_dest = stack.user(1);
    // Someone is ready to drain the destination's WETH pools.
    let usdc_weth = dest.pools["USDC/WETH"];
    liquidity::approve(&user_dest, &[(dest.tokens["USDC"], usdc_weth)])
        .await
        .unwrap();
    let user = dev_signer(USER);
    let signed = quote_and_sign(server, &intent("06-pool-drained.json"), &user).await;
    let (status, accepted) = call(
        "POST",
        format!("{}/v1/intents", server.base),
        Some(DAPP),
        Some(signed),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    // The drain lands before the solver's swap (which waits for the open), with a higher tip.
    let fees = Fees {
        gas_limit: 300_000,
        max_fee_per_gas: 200_000_000_000,
        max_priority_fee_per_gas: 100_000_000_000,
    };
    let drain = Op::Swap {
        pool: usdc_weth,
        token_in: dest.tokens["USDC"],
        amount_in: U256::from(5_000_000_000_000u64),
        min_out: U256::ZERO,
        to: user.address(),
    };
    let tx = user_dest
        .prepare(TxRequest::new(drain, fees))
        .await
        .unwrap();
    user_dest.broadcast(&tx).await.unwrap();
    loop {
        match user_dest.status(&tx, None).await.unwrap() {
            TxStatus::Included(inc) => {
                assert!(inc.success);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    accepted["intent_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_leg_refunds_the_user_over_rest() {
    let stack = Stack::new("refunded").await;
    let server = stack.serve().await;
    let origin = &stack.devnet.chains[0];
    let user = dev_signer(USER);
    let usdc_before = balance(&stack.user(0), origin.tokens["USDC"], user.address()).await;
    let id = submit_and_drain(&stack, &server).await;
    let id = id.as_str();
    let view = outcome(&server, id).await;
    assert_eq!(view["outcome"]["outcome"], "refunded", "{view:#}");
    let swap = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "swap")
        .unwrap();
    assert_eq!(swap["state"], "failed", "{view:#}");
    assert_eq!(swap["reason_code"], "reverted");
    assert!(swap["reason"].as_str().unwrap().contains("minOut"));
    assert_eq!(
        balance(&stack.user(0), origin.tokens["USDC"], user.address()).await,
        usdc_before,
        "the user's USDC is back"
    );

    // The operator replays it on forks: the swap's slippage revert reproduces, with its trace.
    let report = stack.replay(id);
    assert_eq!(report["reproduced"], true, "{report:#}");
    let failing = &report["failing_step"];
    assert_eq!(failing["step"], swap["id"], "{report:#}");
    assert!(
        failing["revert_reason"]
            .as_str()
            .unwrap()
            .contains("minOut"),
        "{report:#}"
    );
    assert!(
        failing["trace"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("Pool.swap")),
        "{report:#}"
    );
    eprintln!("replay took {} ms", report["took_ms"]);
    if std::env::var_os("BATON_SHOW_REPLAY").is_some() {
        let database = format!("sqlite://{}", stack.dir.join("baton.db").display());
        let devnet = stack.dir.join("devnet.json");
        eprintln!(
            "{}",
            cli(
                &[
                    "replay",
                    id,
                    "--database",
                    &database,
                    "--devnet",
                    devnet.to_str().unwrap()
                ],
                &[]
            )
        );
    }

    // With a change tried on fresh forks (the intent re-planned where the saga failed, around the
    // drained pool), it would have been fulfilled.
    let change = stack.dir.join("change.json");
    std::fs::write(&change, r#"{ "slippage_bps": 100 }"#).unwrap();
    let database = format!("sqlite://{}", stack.dir.join("baton.db").display());
    let devnet = stack.dir.join("devnet.json");
    let tried: Value = serde_json::from_str(&cli(
        &[
            "replay",
            id,
            "--json",
            "--database",
            &database,
            "--devnet",
            devnet.to_str().unwrap(),
            "--with",
            change.to_str().unwrap(),
        ],
        &[],
    ))
    .unwrap();
    let trial = &tried["trial"];
    assert_eq!(trial["fulfilled"], true, "{tried:#}");
    assert_eq!(trial["config"]["slippage_bps"], 100);
    let swaps = trial["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.as_str().unwrap().starts_with("swap"))
        .count();
    assert!(
        swaps >= 2,
        "re-planned around the drained pool (via DAI): {trial:#}"
    );
    eprintln!("replay with a trial took {} ms", tried["took_ms"]);

    // The same through the API, for operators only.
    let url = format!("{}/v1/sagas/{id}/replay", server.base);
    let (status, body) = call("POST", url.clone(), Some(DAPP), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = call("POST", url.clone(), Some(OPS), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["failing_step"]["step"], swap["id"], "{body:#}");
    // A body that is not JSON, or asks to resume without a change, is refused before any fork.
    let broken = reqwest::Client::new()
        .post(url.clone())
        .bearer_auth(OPS)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    assert_eq!(
        broken.json::<Value>().await.unwrap()["code"],
        "malformed_json"
    );
    let (status, body) = call(
        "POST",
        url.clone(),
        Some(OPS),
        Some(json!({ "resume": true })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request"))
    );
    // A refunded saga is not held: it cannot be resumed.
    let (status, body) = call(
        "POST",
        url.clone(),
        Some(OPS),
        Some(json!({ "with": { "slippage_bps": 150 }, "resume": true })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        url,
        Some(OPS),
        Some(json!({ "with": { "max_hops": 3, "slippage_bps": 150 } })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trial"]["fulfilled"], true, "{body:#}");
}

/// With `hold-for-operator-secs`, the saga whose pool was drained waits for an operator instead of
/// refunding; `baton replay --with … --resume` tries a looser bound on forks, then resumes the real
/// saga with it, and the intent ends Fulfilled. The decision is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_saga_is_resumed_with_the_change_its_trial_fulfilled() {
    let stack = Stack::with_config("resumed", "hold-for-operator-secs = 600").await;
    let server = stack.serve().await;
    let dest = &stack.devnet.chains[1];
    let recipient: Address = RECIPIENT.parse().unwrap();
    let weth_before = balance(&stack.user(1), dest.tokens["WETH"], recipient).await;
    let id = submit_and_drain(&stack, &server).await;

    // Held, not refunded: the swap failed and an operator is asked for.
    let view = view_until(&server, &id, |v| {
        v["held_until_ms"].is_i64() || !v["outcome"].is_null()
    })
    .await;
    assert!(view["outcome"].is_null(), "{view:#}");
    assert_eq!(view["status"], "needs_operator", "{view:#}");
    assert!(view["compensating"].is_null(), "{view:#}");
    assert!(
        view["alerts"][0].as_str().unwrap().contains("held"),
        "{view:#}"
    );

    // A dApp key cannot resume; the operator's can.
    let change = stack.dir.join("change.json");
    std::fs::write(&change, r#"{ "slippage_bps": 100 }"#).unwrap();
    let args = [
        "replay",
        &id,
        "--json",
        "--with",
        change.to_str().unwrap(),
        "--resume",
        "--server",
        &server.base,
    ];
    let refused = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .env("BATON_API_KEY", DAPP)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let report: Value = serde_json::from_str(&cli(&args, &[("BATON_API_KEY", OPS)])).unwrap();
    assert_eq!(report["trial"]["fulfilled"], true, "{report:#}");
    assert_eq!(report["resume"]["resumed"], true, "{report:#}");
    assert!(
        report["resume"]["plan"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.as_str().unwrap().starts_with("swap"))
            .count()
            >= 2,
        "re-planned around the drained pool: {report:#}"
    );

    let view = outcome(&server, &id).await;
    assert_eq!(view["outcome"]["outcome"], "fulfilled", "{view:#}");
    assert!(
        balance(&stack.user(1), dest.tokens["WETH"], recipient).await > weth_before,
        "the recipient is paid"
    );
    // The decision is in the saga's log and among the operator actions.
    let (_, actions) = call(
        "GET",
        format!("{}/v1/operator/actions", server.base),
        Some(OPS),
        None,
    )
    .await;
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "resume-saga"
                && a["by"] == "ops"
                && a["target"] == id.as_str()),
        "{actions:#}"
    );
    let events = reqwest::Client::new()
        .get(format!("{}/v1/intents/{id}/events", server.base))
        .bearer_auth(DAPP)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.contains("event: resumed"), "{events}");
    // A saga no longer held is not resumed again.
    let (status, body) = call(
        "POST",
        format!("{}/v1/sagas/{id}/replay", server.base),
        Some(OPS),
        Some(json!({ "with": { "slippage_bps": 100 }, "resume": true })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_reaches_its_outcome_across_a_killed_and_restarted_server() {
    let stack = Stack::new("restart").await;
    let mut server = stack.serve().await;
    let dest = &stack.devnet.chains[1];
    let recipient: Address = RECIPIENT.parse().unwrap();
    let solver = dest.adapter(SOLVER).unwrap();
    let weth_before = balance(&solver, dest.tokens["WETH"], recipient).await;
    let signed = quote_and_sign(
        &server,
        &intent("01-usdc-a-to-weth-b.json"),
        &dev_signer(USER),
    )
    .await;
    let (status, accepted) = call(
        "POST",
        format!("{}/v1/intents", server.base),
        Some(DAPP),
        Some(signed.clone()),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["intent_id"].as_str().unwrap().to_owned();
    // Mid-flight: a transaction is signed, the outcome is not decided.
    let started = Instant::now();
    loop {
        let (_, view) = call(
            "GET",
            format!("{}/v1/intents/{id}", server.base),
            Some(DAPP),
            None,
        )
        .await;
        assert!(view["outcome"].is_null(), "decided before the kill: {view}");
        if view["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["state"] != "pending")
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.child.kill().unwrap(); // SIGKILL: no shutdown at all
    server.child.wait().unwrap();
    drop(server);

    let server = stack.serve().await;
    let view = outcome(&server, &id).await;
    assert_eq!(view["outcome"]["outcome"], "fulfilled", "{view:#}");
    let weth_after = balance(&solver, dest.tokens["WETH"], recipient).await;
    assert!(weth_after - weth_before >= U256::from(390_000_000_000_000_000u64));
    // Submitting the same signed orders again answers the same intent.
    let (status, again) = call(
        "POST",
        format!("{}/v1/intents", server.base),
        Some(DAPP),
        Some(signed),
    )
    .await;
    assert_eq!(
        (status, again["intent_id"].as_str()),
        (202, Some(id.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_error_has_its_code_and_a_sentence() {
    let stack = Stack::new("errors").await;
    let server = stack.serve().await;
    let base = &server.base;
    let user = dev_signer(USER);
    let mut seen = std::collections::BTreeSet::new();
    let mut expect = |what: &str, got: (u16, Value), status: u16, code: &str| {
        assert_eq!(got.0, status, "{what}: {}", got.1);
        assert_eq!(got.1["code"], code, "{what}: {}", got.1);
        assert!(
            got.1["message"].as_str().is_some_and(|m| m.len() > 10),
            "{what}: a sentence: {}",
            got.1
        );
        seen.insert(code.to_owned());
    };
    let quote = |body: Value| call("POST", format!("{base}/v1/quotes"), Some(DAPP), Some(body));
    let good = intent("01-usdc-a-to-weth-b.json");
    let with = |path: &[&str], value: Value| {
        let mut v = good.clone();
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*p],
            };
        }
        at[path[path.len() - 1]] = value;
        v
    };

    // Transport and shape.
    let raw = |content_type: &'static str, body: String, key: Option<&'static str>| {
        let url = format!("{base}/v1/quotes");
        async move {
            let mut r = reqwest::Client::new()
                .post(url)
                .header("content-type", content_type)
                .body(body);
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    expect(
        "no key",
        raw("application/json", good.to_string(), None).await,
        401,
        "unauthorized",
    );
    expect(
        "unknown key",
        call(
            "POST",
            format!("{base}/v1/quotes"),
            Some("not-a-key-0123456789"),
            Some(good.clone()),
        )
        .await,
        401,
        "unauthorized",
    );
    expect(
        "not JSON",
        raw("application/json", "{not json".into(), Some(DAPP)).await,
        400,
        "malformed_json",
    );
    expect(
        "text",
        raw("text/plain", good.to_string(), Some(DAPP)).await,
        415,
        "unsupported_media_type",
    );
    expect(
        "huge body",
        raw(
            "application/json",
            format!("{{\"name\": \"{}\"}}", "x".repeat(100_000)),
            Some(DAPP),
        )
        .await,
        413,
        "payload_too_large",
    );
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("user");
    expect(
        "missing field",
        quote(missing).await,
        400,
        "invalid_request",
    );
    expect(
        "wrong type",
        quote(with(&["inputs", "0", "chain"], json!("one"))).await,
        400,
        "invalid_request",
    );
    expect(
        "unknown field",
        quote(with(&["colour"], json!("red"))).await,
        400,
        "invalid_request",
    );
    expect(
        "no route",
        call("GET", format!("{base}/v1/nothing"), Some(DAPP), None).await,
        404,
        "not_found",
    );
    expect(
        "method",
        call("DELETE", format!("{base}/v1/quotes"), Some(DAPP), None).await,
        405,
        "method_not_allowed",
    );

    // The intent itself.
    expect(
        "chain",
        quote(with(&["inputs", "0", "chain"], json!(9999))).await,
        400,
        "unknown_chain",
    );
    expect(
        "token",
        quote(with(&["outputs", "0", "token"], json!("DOGE"))).await,
        400,
        "unknown_token",
    );
    expect(
        "zero",
        quote(with(&["inputs", "0", "amount"], json!("0"))).await,
        400,
        "amount_out_of_range",
    );
    expect(
        "huge",
        quote(with(&["inputs", "0", "amount"], json!("1".repeat(90)))).await,
        400,
        "amount_out_of_range",
    );
    expect(
        "past",
        quote(with(&["open_deadline"], json!({ "at": 1000 }))).await,
        400,
        "deadline_passed",
    );
    expect(
        "no outputs",
        quote(with(&["outputs"], json!([]))).await,
        400,
        "invalid_intent",
    );
    let rushed = {
        let mut v = with(&["open_deadline"], json!({ "in": 1 }));
        v["fill_deadline"] = json!({ "in": 2 });
        v
    };
    expect("too soon", quote(rushed).await, 400, "deadline_too_soon");
    expect(
        "liquidity",
        quote(with(
            &["outputs", "0", "min_amount"],
            json!("90000000000000000000"),
        ))
        .await,
        422,
        "insufficient_liquidity",
    );

    // Submissions.
    let submit = |body: Value, key: Option<&'static str>| {
        let url = format!("{base}/v1/intents");
        async move {
            let mut r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .bearer_auth(DAPP);
            if let Some(k) = key {
                r = r.header("Idempotency-Key", k);
            }
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let signed = quote_and_sign(&server, &good, &user).await;
    let forged = quote_and_sign(&server, &good, &dev_signer(2)).await;
    expect("forged", submit(forged, None).await, 400, "bad_signature");
    let mut garbled = signed.clone();
    garbled["orders"][0]["signature"] = json!("0x1234");
    expect("garbled", submit(garbled, None).await, 400, "bad_signature");
    let dai_in = with(&["inputs", "0", "token"], json!("DAI"));
    let dai_in = {
        let mut v = dai_in;
        v["inputs"][0]["amount"] = json!("1000000000000000000000");
        v["nonce"] = json!("77");
        v
    };
    let unapproved = quote_and_sign(&server, &dai_in, &user).await;
    expect(
        "allowance",
        submit(unapproved, None).await,
        422,
        "insufficient_allowance",
    );
    let poor = dev_signer(4);
    let poor_intent = with(&["user"], json!(poor.address().to_string()));
    let poor_signed = quote_and_sign(&server, &poor_intent, &poor).await;
    expect(
        "balance",
        submit(poor_signed, None).await,
        422,
        "insufficient_balance",
    );

    let first = submit(signed.clone(), Some("key-1")).await;
    assert_eq!(first.0, 202, "{}", first.1);
    let again = submit(signed.clone(), Some("key-1")).await;
    assert_eq!(
        (again.0, &again.1["intent_id"]),
        (202, &first.1["intent_id"])
    );
    let other = quote_and_sign(&server, &with(&["nonce"], json!("78")), &user).await;
    expect(
        "idempotency",
        submit(other, Some("key-1")).await,
        409,
        "idempotency_conflict",
    );
    let id = first.1["intent_id"].as_str().unwrap().to_owned();
    expect(
        "retry a running saga",
        call(
            "POST",
            format!("{base}/v1/operator/sagas/{id}/retry"),
            Some(OPS),
            None,
        )
        .await,
        409,
        "conflict",
    );
    expect(
        "no such intent",
        call(
            "GET",
            format!("{base}/v1/intents/0x{}", "00".repeat(32)),
            Some(DAPP),
            None,
        )
        .await,
        404,
        "not_found",
    );
    // Once the order is open on chain its nonce is used: another intent with it is refused.
    let started = Instant::now();
    loop {
        let (_, view) = call("GET", format!("{base}/v1/intents/{id}"), Some(DAPP), None).await;
        if view["steps"][0]["state"] == "final" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reuse = quote_and_sign(
        &server,
        &with(&["inputs", "0", "amount"], json!("999000000")),
        &user,
    )
    .await;
    expect("nonce", submit(reuse, None).await, 409, "nonce_used");

    // Roles and rate limits.
    expect(
        "dapp on operator",
        call("GET", format!("{base}/v1/operator/sagas"), Some(DAPP), None).await,
        403,
        "forbidden",
    );
    let list = call(
        "GET",
        format!("{base}/v1/operator/sagas?state=running"),
        Some(OPS),
        None,
    )
    .await;
    assert_eq!(list.0, 200, "{}", list.1);
    expect(
        "bad state",
        call(
            "GET",
            format!("{base}/v1/operator/sagas?state=sleeping"),
            Some(OPS),
            None,
        )
        .await,
        400,
        "invalid_request",
    );
    let mut limited = None;
    for _ in 0..5 {
        let response = reqwest::Client::new()
            .get(format!("{base}/v1/chains"))
            .bearer_auth(SLOW)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            let retry_after = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_owned();
            limited = Some((retry_after, response.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (retry_after, body) = limited.expect("the 1/s key is limited");
    assert!(retry_after.parse::<u64>().unwrap() >= 1);
    expect("rate", (429, body), 429, "rate_limited");

    // The emergency brake: operators pull it, nothing is admitted, only an admin releases it.
    let pulled = call(
        "POST",
        format!("{base}/v1/operator/pause"),
        Some(OPS),
        Some(json!({ "reason": "drill" })),
    )
    .await;
    assert_eq!(pulled.0, 200, "{}", pulled.1);
    let braked = quote_and_sign(&server, &with(&["nonce"], json!("79")), &user).await;
    expect("brake", submit(braked, None).await, 503, "paused");
    expect(
        "operator release",
        call(
            "POST",
            format!("{base}/v1/operator/resume"),
            Some(OPS),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    let released = call(
        "POST",
        format!("{base}/v1/operator/resume"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (released.0, released.1.as_array().map(Vec::len)),
        (200, Some(0))
    );
    let actions = call(
        "GET",
        format!("{base}/v1/operator/actions"),
        Some(OPS),
        None,
    )
    .await;
    let actions = actions.1.as_array().unwrap().clone();
    assert!(
        actions
            .iter()
            .any(|a| a["by"] == "ops" && a["action"] == "pause")
    );
    assert!(
        actions
            .iter()
            .any(|a| a["by"] == "admin" && a["action"] == "resume")
    );

    // The OpenAPI document lists every endpoint.
    let doc = reqwest::get(format!("{base}/openapi.json"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    for path in [
        "/v1/quotes",
        "/v1/intents",
        "/v1/intents/{id}",
        "/v1/intents/{id}/events",
        "/v1/chains",
        "/v1/inventory",
        "/v1/operator/sagas",
        "/metrics",
        "/healthz",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} in the OpenAPI document"
        );
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["Code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in &seen {
        assert!(codes.contains(&code.as_str()), "{code} is documented");
    }
    for code in [
        "bad_signature",
        "nonce_used",
        "deadline_passed",
        "unknown_chain",
        "unknown_token",
        "amount_out_of_range",
        "insufficient_liquidity",
        "insufficient_allowance",
        "insufficient_balance",
        "idempotency_conflict",
        "unauthorized",
        "forbidden",
        "rate_limited",
    ] {
        assert!(seen.contains(code), "{code} reached");
    }
}
