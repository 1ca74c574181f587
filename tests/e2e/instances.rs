//! Several `baton serve` instances on one PostgreSQL database, signing as one solver key: they hand
//! out the solver's nonces through the database (no two transactions share one), and take over the
//! sagas of an instance that was killed, without a restart. Runs when `DATABASE_URL` is set (CI
//! sets it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use baton_adapters::devnet::{SOLVER, USER, dev_signer};
use baton_adapters::port::{ChainAdapter, TxStatus};
use baton_api::dto::intent::Accepted;
use baton_api::dto::saga::{Outcome, SagaView};
use baton_engine::event::SagaEvent;
use baton_engine::{Db, SagaLog};
use serde_json::{Value, json};
use sqlx::postgres::PgPool;

use crate::hostile::{self, Hostile, Hostility};
use crate::stack::{DAPP, RECIPIENT, Server, Stack, balance, cli};

/// A PostgreSQL database of its own for one test, dropped with it.
pub(crate) struct Scratch {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl Scratch {
    /// `None` when `DATABASE_URL` is not set; a panic when it is set and unreachable.
    pub(crate) async fn create(test: &str) -> Option<Self> {
        let admin = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!("DATABASE_URL is not set: the instances test is skipped (CI sets it)");
                return None;
            }
        };
        let name = format!(
            "baton_e2e_{test}_{}_{}",
            std::process::id(),
            fastrand::u32(..)
        );
        let pool = PgPool::connect(&admin)
            .await
            .expect("DATABASE_URL is set, and PostgreSQL must answer");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap();
        let mut url: reqwest::Url = admin.parse().unwrap();
        url.set_path(&format!("/{name}"));
        Some(Self {
            admin,
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(pool) = PgPool::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
                }
            });
        })
        .join();
    }
}

/// Intent `n`: 100 USDC on `from` for at least 95 USDC on `to`, from the dev user.
fn intent(n: u64, from: u64, to: u64) -> Value {
    json!({
        "user": dev_signer(USER).address(),
        "nonce": (1_000_000 + n).to_string(),
        "open_deadline": { "in": 600 },
        "fill_deadline": { "in": 1_200 },
        "inputs": [{ "chain": from, "token": "USDC", "amount": "100000000" }],
        "outputs": [{ "chain": to, "token": "USDC", "min_amount": "95000000", "recipient": RECIPIENT }]
    })
}

/// `method path` on `base` as the dApp; `None` when the server cannot be reached (it was killed).
async fn try_call(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url = format!("{base}{path}");
    let mut request = if method == "POST" {
        http.post(url)
    } else {
        http.get(url)
    };
    request = request.bearer_auth(DAPP);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// Quotes, signs and submits `intent` through the first of `bases` (from `first` on, round the
/// list) that answers, as a client of several instances does; the intent's id.
async fn submit_anywhere(bases: &[String], first: usize, intent: &Value) -> String {
    let user = dev_signer(USER);
    let mut signed = None;
    for k in 0..bases.len() * 20 {
        let base = &bases[(first + k) % bases.len()];
        if signed.is_none() {
            match try_call(base, "POST", "/v1/quotes", Some(intent)).await {
                Some((200, quote)) => {
                    signed = Some(baton_api::wallet::sign_quote(&quote, &user).unwrap());
                }
                Some((status, body)) if status < 500 => panic!("quote refused: {status} {body}"),
                _ => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            }
        }
        match try_call(base, "POST", "/v1/intents", signed.as_ref()).await {
            Some((202, body)) => {
                let accepted: Accepted = serde_json::from_value(body).unwrap();
                return accepted.intent_id;
            }
            Some((status, body)) if status < 500 => panic!("submission refused: {status} {body}"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    panic!("no instance took the intent");
}

/// Waits until every intent of `ids` has an outcome, asking whichever instance answers; their views.
async fn outcomes(bases: &[String], ids: &[String], limit: Duration) -> Vec<SagaView> {
    let started = Instant::now();
    let mut views = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        loop {
            let base = &bases[i % bases.len()];
            if let Some((200, body)) =
                try_call(base, "GET", &format!("/v1/intents/{id}"), None).await
            {
                let view: SagaView = serde_json::from_value(body).unwrap();
                if view.outcome.is_some() {
                    views.push(view);
                    break;
                }
            }
            assert!(
                started.elapsed() < limit,
                "intent {i} ({id}) has no outcome after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    views
}

/// Every logged transaction of the saga log at `url`: per (chain, nonce), the (saga, step,
/// compensation) keys that signed with it; per such key, its transactions.
type Signed = HashMap<(u64, u64), HashSet<String>>;

async fn signed(
    url: &str,
) -> (
    Signed,
    BTreeMap<String, Vec<baton_adapters::port::SignedTx>>,
) {
    let log = SagaLog::new(Db::connect(url).await.unwrap());
    let mut by_nonce: Signed = HashMap::new();
    let mut by_step: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for saga in log.sagas().await.unwrap() {
        for e in log.events(saga).await.unwrap() {
            if let SagaEvent::TxSigned { step, comp, tx, .. } = e.event {
                let key = format!("{saga} step {} comp {comp}", step.0);
                by_nonce
                    .entry((tx.chain.0, tx.nonce))
                    .or_default()
                    .insert(key.clone());
                by_step.entry(key).or_default().push(tx);
            }
        }
    }
    (by_nonce, by_step)
}

/// No nonce signed two steps' transactions, no step has two transactions included, and the
/// instances' logs hold no refusal for a nonce.
async fn assert_no_nonce_collision(stack: &Stack, url: &str, instances: &[String]) {
    let (by_nonce, by_step) = signed(url).await;
    let shared: Vec<_> = by_nonce.iter().filter(|(_, keys)| keys.len() > 1).collect();
    assert!(shared.is_empty(), "nonces signed by two steps: {shared:#?}");
    let adapters: HashMap<u64, _> = stack
        .devnet
        .chains
        .iter()
        .map(|c| (c.chain_id, c.adapter(SOLVER).unwrap()))
        .collect();
    for (step, txs) in &by_step {
        let mut seen = HashSet::new();
        let mut included = 0;
        for tx in txs.iter().filter(|t| seen.insert(t.hash)) {
            let adapter = &adapters[&tx.chain.0];
            if let TxStatus::Included(_) = adapter.status(tx, None).await.unwrap() {
                included += 1;
            }
        }
        assert!(included <= 1, "{step}: {included} transactions included");
    }
    // A node may refuse a transaction for its nonce only when that nonce is the step's own: a
    // replacement (same nonce, higher fees) after the transaction it replaces landed, or the same
    // bytes sent again. Never because another step, or another instance, used it.
    let mut refusals = 0;
    for name in instances {
        let log = std::fs::read_to_string(stack.dir.join(format!("{name}.log"))).unwrap();
        for line in log
            .lines()
            .filter(|l| l.contains("nonce too low") || l.contains("underpriced"))
        {
            refusals += 1;
            let field = |key: &str| {
                let at = line.find(key).unwrap_or_else(|| panic!("{name}: {line}")) + key.len();
                line[at..].split([' ', ',', '}']).next().unwrap().to_owned()
            };
            let (saga, step) = (field(" saga="), field(" step="));
            let txs = [false, true]
                .iter()
                .find_map(|comp| by_step.get(&format!("{saga} step {step} comp {comp}")))
                .unwrap_or_else(|| panic!("{name}: a refusal for no logged step: {line}"));
            let nonces: HashSet<u64> = txs.iter().map(|t| t.nonce).collect();
            assert_eq!(nonces.len(), 1, "{name}: a nonce collision: {line}");
        }
    }
    eprintln!("refusals for a nonce, each of a step's own: {refusals}");
}

/// Each chain's USDC held by the user, the solver, the recipient and the settlers.
async fn usdc(stack: &Stack) -> Vec<[U256; 5]> {
    let recipient: Address = RECIPIENT.parse().unwrap();
    let mut out = Vec::new();
    for chain in &stack.devnet.chains {
        let a = chain.adapter(SOLVER).unwrap();
        let token = chain.tokens["USDC"];
        out.push([
            balance(&a, token, dev_signer(USER).address()).await,
            balance(&a, token, a.account()).await,
            balance(&a, token, recipient).await,
            balance(&a, token, chain.origin_settler).await,
            balance(&a, token, chain.destination_settler).await,
        ]);
    }
    out
}

/// Tokens are conserved on each chain among the parties, nothing stays in escrow, the user paid
/// exactly 100 USDC per fulfilled intent from each chain, and the recipient got at least 95.
fn assert_conserved(before: &[[U256; 5]], after: &[[U256; 5]], sent_from: &[u64]) {
    let hundred = U256::from(100_000_000u64);
    for (c, (b, a)) in before.iter().zip(after).enumerate() {
        let sum = |x: &[U256; 5]| x.iter().fold(U256::ZERO, |s, v| s + v);
        assert_eq!(sum(b), sum(a), "chain {c}: USDC created or destroyed");
        assert_eq!(b[3], a[3], "chain {c}: USDC left in escrow");
        assert_eq!(
            b[0] - a[0],
            hundred * U256::from(sent_from[c]),
            "chain {c}: the user paid"
        );
    }
    let received: U256 = before.iter().zip(after).map(|(b, a)| a[2] - b[2]).sum();
    let intents: u64 = sent_from.iter().sum();
    assert!(received >= U256::from(95_000_000u64) * U256::from(intents));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_started_at_once_share_the_solvers_nonces() {
    let Some(db) = Scratch::create("nonces").await else {
        return;
    };
    let stack = Stack::builder("instances-nonces")
        .database(&db.url)
        .start()
        .await;
    let before = usdc(&stack).await;
    // Started at the same moment: both approve the solver's inventory, neither fails.
    let (a, b) = tokio::join!(stack.serve_as("a"), stack.serve_as("b"));
    let bases = [a.base.clone(), b.base.clone()];
    let mut ids = Vec::new();
    let mut sent_from = [0u64; 2];
    for n in 0..20u64 {
        let (from, to) = if n % 4 < 2 {
            (1001, 1002)
        } else {
            (1002, 1001)
        };
        sent_from[usize::from(from == 1002)] += 1;
        ids.push(submit_anywhere(&bases, usize::try_from(n).unwrap(), &intent(n, from, to)).await);
    }
    for view in outcomes(&bases, &ids, Duration::from_secs(240)).await {
        assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    }
    wait_settled(&db.url).await;
    assert_no_nonce_collision(&stack, &db.url, &["a".into(), "b".into()]).await;
    assert_conserved(&before, &usdc(&stack).await, &sent_from);
    drop((a, b));
}

/// Waits until every saga of the log at `url` completed (the solver repaid, or the user refunded).
async fn wait_settled(url: &str) {
    let log = SagaLog::new(Db::connect(url).await.unwrap());
    let started = Instant::now();
    loop {
        let left = log.unfinished().await.unwrap();
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{} sagas never completed",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Seconds until no unfinished saga is leased by `instance` any more (another took them over).
async fn taken_over(url: &str, instance: &str, killed: Instant) -> f64 {
    let pool = PgPool::connect(url).await.unwrap();
    loop {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sagas WHERE state <> 'completed' AND lease_owner = $1",
        )
        .bind(instance)
        .fetch_one(&pool)
        .await
        .unwrap();
        if held == 0 {
            return killed.elapsed().as_secs_f64();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "{instance}'s sagas were not taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A run of several instances behind a client that submits to any of them, one SIGKILLed every
/// `kill_every` and started again at once under a new name.
struct Failover {
    name: &'static str,
    instances: usize,
    intents: u64,
    /// Between two submissions.
    pace: Duration,
    kill_every: Duration,
    /// Providers between the instances and the nodes.
    hostility: Option<Hostility>,
}

/// What a [`Failover`] run saw.
struct Ran {
    outcomes: BTreeMap<String, usize>,
    kills: usize,
    takeovers: Vec<f64>,
    /// Per chain: what its provider did.
    providers: Vec<[u64; 5]>,
}

impl Failover {
    /// Runs it on the PostgreSQL database `db`: every intent must end Fulfilled, no nonce signs
    /// two steps, tokens are conserved and the log verifies.
    async fn run(self, db: &Scratch) -> Ran {
        let stack = Stack::builder(&format!("instances-{}", self.name))
            .database(&db.url)
            .config("lease-secs = 4\nclaim-every-secs = 1")
            .start()
            .await;
        let providers: Vec<Hostile> = match self.hostility {
            Some(h) => {
                let mut providers = Vec::new();
                for chain in &stack.devnet.chains {
                    providers.push(hostile::start(chain.rpc_url().as_str(), h).await);
                }
                stack.reroute(&providers.iter().map(|p| p.url.clone()).collect::<Vec<_>>());
                providers
            }
            None => Vec::new(),
        };
        let before = usdc(&stack).await;
        let mut names: Vec<String> = (0..self.instances).map(|i| format!("i{i}")).collect();
        let mut servers: Vec<Server> =
            futures_util::future::join_all(names.iter().map(|n| stack.serve_as(n))).await;
        let mut all_names = names.clone();
        let mut bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        let mut ids = Vec::new();
        let mut sent_from = [0u64; 2];
        let mut takeovers = Vec::new();
        let mut last_kill = Instant::now();
        let mut kills = 0usize;
        let started = Instant::now();
        for n in 0..self.intents {
            let (from, to) = if n % 2 == 0 {
                (1001, 1002)
            } else {
                (1002, 1001)
            };
            sent_from[usize::from(from == 1002)] += 1;
            let first = usize::try_from(n).unwrap();
            ids.push(submit_anywhere(&bases, first, &intent(n, from, to)).await);
            if last_kill.elapsed() >= self.kill_every {
                // SIGKILL one instance, mid-flight; another takes its sagas over; it comes back
                // at once under a new name.
                let victim = kills % self.instances;
                servers[victim].child.kill().unwrap();
                servers[victim].child.wait().unwrap();
                let killed = Instant::now();
                takeovers.push(tokio::spawn({
                    let (url, name) = (db.url.clone(), names[victim].clone());
                    async move { taken_over(&url, &name, killed).await }
                }));
                kills += 1;
                names[victim] = format!("i{}", kills + self.instances - 1);
                all_names.push(names[victim].clone());
                servers[victim] = stack.serve_as(&names[victim]).await;
                bases[victim] = servers[victim].base.clone();
                last_kill = Instant::now();
            }
            tokio::time::sleep(self.pace).await;
        }
        let submitted = started.elapsed();
        let views = outcomes(&bases, &ids, Duration::from_secs(300)).await;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for view in &views {
            *counts.entry(format!("{:?}", view.outcome)).or_default() += 1;
        }
        let mut seconds = Vec::new();
        for t in takeovers {
            seconds.push(t.await.unwrap());
        }
        let ran = Ran {
            outcomes: counts,
            kills,
            takeovers: seconds,
            providers: providers.iter().map(|p| p.seen.counts()).collect(),
        };
        eprintln!(
            "{}: {} intents over {:.0} s to {} instances, {} kills; outcomes {:?}; takeover \
             seconds {:.1?}; providers (requests, throttled, dropped, lagged, range refused) {:?}",
            self.name,
            self.intents,
            submitted.as_secs_f64(),
            self.instances,
            ran.kills,
            ran.outcomes,
            ran.takeovers,
            ran.providers
        );
        for view in &views {
            assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
        }
        wait_settled(&db.url).await;
        assert_no_nonce_collision(&stack, &db.url, &all_names).await;
        assert_conserved(&before, &usdc(&stack).await, &sent_from);
        cli(&["audit", "verify", "--database", &db.url], &[]);
        drop(servers);
        ran
    }
}

/// The number of intents of a failover run: `BATON_FAILOVER_INTENTS`, else `default`.
fn intents_or(default: u64) -> u64 {
    std::env::var("BATON_FAILOVER_INTENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_every_ten_seconds_lose_nothing() {
    let Some(db) = Scratch::create("failover").await else {
        return;
    };
    let ran = Failover {
        name: "failover",
        instances: 3,
        intents: intents_or(200),
        pace: Duration::from_millis(250),
        kill_every: Duration::from_secs(10),
        hostility: None,
    }
    .run(&db)
    .await;
    assert!(
        ran.kills >= 2,
        "the run was too short to kill anything twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_behind_hostile_providers_and_killed_lose_nothing() {
    let Some(db) = Scratch::create("hostile").await else {
        return;
    };
    let ran = Failover {
        name: "hostile",
        instances: 2,
        intents: intents_or(60),
        pace: Duration::from_millis(400),
        kill_every: Duration::from_secs(10),
        hostility: Some(Hostility {
            // Low enough that the quota bites: with followers baton calls each node a few
            // dozen times a second here.
            per_second: 25,
            // Narrower than baton's default (1,000), and than the 64 recent blocks it reads at
            // every look: it learns the provider's range.
            logs_max_range: 50,
            jitter_ms: 40,
            drop_one_in: 50,
            lag_one_in: 4,
        }),
    }
    .run(&db)
    .await;
    assert!(ran.kills >= 1);
    for [requests, throttled, dropped, lagged, range_refused] in &ran.providers {
        assert!(
            *requests > 0 && *throttled > 0 && *dropped > 0 && *lagged > 0 && *range_refused > 0,
            "{:?}",
            ran.providers
        );
    }
}
