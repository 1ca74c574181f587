//! The stack the REST stories run on: two anvil chains, three `baton attester serve` processes
//! (dev accounts 7, 8, 9; any two settle), a `baton serve` process over them with a config of its
//! own (SQLite log in a scratch folder, four API keys), and the calls a dApp and an operator make,
//! answered as the API's typed views.
//!
//! `Stack::builder("name").config("hold-for-operator-secs = 600").serve()` starts it all; the
//! nodes, the server and the folder go away when the values are dropped (also on a panic).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use baton_adapters::devnet::{ATTESTERS, Devnet, DevnetAttester, USER};
use baton_adapters::port::ChainAdapter;
use baton_api::ErrorBody;
use baton_api::dto::intent::Accepted;
use baton_api::dto::saga::SagaView;
use baton_engine::liquidity;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub const DAPP: &str = "dapp-secret-0123456789";
pub const OPS: &str = "operator-secret-0123456789";
pub const ADMIN: &str = "admin-secret-0123456789";
pub const SLOW: &str = "slow-secret-0123456789";
/// Fees that put a user's transaction ahead of the solver's in the next block (a higher tip).
pub const FIRST_IN_BLOCK: baton_adapters::port::Fees = baton_adapters::port::Fees {
    gas_limit: 300_000,
    max_fee_per_gas: 200_000_000_000,
    max_priority_fee_per_gas: 100_000_000_000,
};
pub const RECIPIENT: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// Two anvil chains, three attesters over them, a config for `baton serve` over them, and a
/// folder for its saga log.
pub struct Stack {
    pub devnet: Devnet,
    pub dir: PathBuf,
    config: PathBuf,
    /// The attester processes (`None` once killed).
    attesters: std::sync::Mutex<Vec<Option<Process>>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.attesters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process, killed when dropped (also when a test panics).
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `baton attester serve` as dev account `k` over the chains of `devnet_file`, its config,
/// state and log named `name` in `dir`, and waits until it answers; returns it and its URL.
pub async fn attester_process(
    k: usize,
    name: &str,
    dir: &std::path::Path,
    devnet_file: &std::path::Path,
) -> (Process, String) {
    let port = free_port();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{db}\"\nkey = {{ env = \
             \"BATON_ATTESTER_KEY\" }}\nconfirmations = 2\ndevnet = \"{devnet}\"\n",
            db = dir.join(format!("{name}.db")).display(),
            devnet = devnet_file.display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["attester", "serve", "--config"])
        .arg(&config)
        .env("BATON_ATTESTER_KEY", baton_adapters::devnet::DEV_KEYS[k])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut process = Process(child);
    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{url}v1/health")).await
            && r.status().is_success()
        {
            return (process, url);
        }
        if let Some(status) = process.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log")));
            panic!(
                "attester {name} exited ({status}): {}",
                log.unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "attester {name} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a [`Stack`] is configured before it starts.
pub struct StackBuilder {
    name: String,
    extra: String,
    database: Option<String>,
    spare_settlers: bool,
}

impl StackBuilder {
    /// A second settler pair on each chain (a settler upgrade's), in the devnet file: the
    /// attesters trust it too, and the user lets its origin settlers pull its tokens.
    pub fn spare_settlers(mut self) -> Self {
        self.spare_settlers = true;
        self
    }

    /// Top-level keys added to `baton serve`'s config.
    pub fn config(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self.extra.push('\n');
        self
    }

    /// The saga log at `url` instead of a SQLite file in the stack's folder.
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_owned());
        self
    }

    /// Starts the chains (the user's approvals in place), and no server yet.
    pub async fn start(self) -> Stack {
        Stack::start(self).await
    }

    /// Starts the chains (the user's approvals in place) and the server.
    pub async fn serve(self) -> (Stack, Server) {
        let stack = self.start().await;
        let server = stack.serve().await;
        (stack, server)
    }
}

/// A `baton serve` process, killed when dropped (also when a test panics).
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `baton args` with `env`; asserts it succeeds; returns its standard output.
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> String {
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
    /// A stack named `name` (its folder), configured further before it serves.
    pub fn builder(name: &str) -> StackBuilder {
        StackBuilder {
            name: name.to_owned(),
            extra: String::new(),
            database: None,
            spare_settlers: false,
        }
    }

    async fn start(b: StackBuilder) -> Self {
        let StackBuilder {
            name,
            extra,
            database,
            spare_settlers,
        } = b;
        let mut devnet = Devnet::start(2, Some(1)).await.unwrap();
        if spare_settlers {
            for chain in &mut devnet.chains {
                chain.deploy_settlers().await.unwrap();
            }
        }
        let dir = std::env::temp_dir().join(format!("baton-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let devnet_file = dir.join("devnet.json");
        let mut file = devnet.file();
        std::fs::write(&devnet_file, serde_json::to_string(&file).unwrap()).unwrap();
        // Three attesters, each its own process, read the chains from the file; the servers find
        // them in it.
        let mut attesters = Vec::new();
        for (n, k) in ATTESTERS.into_iter().enumerate() {
            let (process, url) =
                attester_process(k, &format!("attester-{}", n + 1), &dir, &devnet_file).await;
            file.attesters.push(DevnetAttester {
                url,
                address: baton_adapters::devnet::dev_signer(k).address(),
                pid: None,
            });
            attesters.push(Some(process));
        }
        std::fs::write(&devnet_file, serde_json::to_string(&file).unwrap()).unwrap();
        std::fs::write(dir.join("slow.key"), format!("{SLOW}\n")).unwrap();
        let config = dir.join("baton.toml");
        std::fs::write(
            &config,
            format!(
                r#"
database = "{db}"
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
                db = database
                    .unwrap_or_else(|| format!("sqlite://{}", dir.join("baton.db").display())),
                devnet = devnet_file.display(),
                slow = dir.join("slow.key").display(),
            ),
        )
        .unwrap();
        // The user lets the origin settlers pull its USDC and WETH (not its DAI on 1001).
        for chain in &devnet.chains {
            let user = chain.adapter(USER).unwrap();
            let mut pairs = Vec::new();
            let origins = std::iter::once(chain.origin_settler)
                .chain(chain.other_settlers.iter().map(|s| s.origin));
            for settler in origins {
                pairs.push((chain.tokens["USDC"], settler));
                pairs.push((chain.tokens["WETH"], settler));
                if chain.chain_id != 1001 {
                    pairs.push((chain.tokens["DAI"], settler));
                }
            }
            liquidity::approve(&user, &pairs).await.unwrap();
        }
        Self {
            devnet,
            dir,
            config,
            attesters: std::sync::Mutex::new(attesters),
        }
    }

    /// Kills attester `n` (0, 1 or 2: dev accounts 7, 8, 9), as a crash or an outage would.
    pub fn kill_attester(&self, n: usize) {
        self.attesters.lock().unwrap()[n] = None;
    }

    /// The devnet file the servers read, as it stands.
    pub fn devnet_file(&self) -> baton_adapters::devnet::DevnetFile {
        let text = std::fs::read_to_string(self.dir.join("devnet.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Starts `baton serve` and waits until it answers.
    pub async fn serve(&self) -> Server {
        self.serve_as("e2e").await
    }

    /// Starts `baton serve` as instance `instance` (its name in saga leases and nonce claims),
    /// logging to `{instance}.log` in the stack's folder, and waits until it answers.
    pub async fn serve_as(&self, instance: &str) -> Server {
        self.serve_with(instance, &[]).await
    }

    /// [`Stack::serve_as`] with environment variables `env` set for this instance alone.
    pub async fn serve_with(&self, instance: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = std::fs::File::create(self.dir.join(format!("{instance}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("BATON_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .env("TEST_DAPP_KEY", DAPP)
            .env("TEST_OPS_KEY", OPS)
            .env("TEST_ADMIN_KEY", ADMIN)
            .env("BATON_INSTANCE", instance)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server {
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
            if let Some(status) = server.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(self.dir.join(format!("{instance}.log")));
                panic!(
                    "baton serve {instance} exited ({status}): {}",
                    log.unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "baton serve did not come up"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Points the servers started from now on at `urls` (one per chain, in chain order) instead
    /// of the nodes themselves, as a provider in front of them would be.
    pub fn reroute(&self, urls: &[String]) {
        let mut file = self.devnet_file();
        for (chain, url) in file.chains.iter_mut().zip(urls) {
            chain.rpc_url = url.clone();
        }
        let text = serde_json::to_string(&file).unwrap();
        std::fs::write(self.dir.join("devnet.json"), text).unwrap();
    }

    /// The `sqlite://` URL of the server's saga log.
    pub fn database(&self) -> String {
        format!("sqlite://{}", self.dir.join("baton.db").display())
    }

    /// `baton replay ID --json` on this stack's saga log and chains, with `extra` arguments.
    pub fn replay(&self, id: &str, extra: &[&str]) -> baton_replay::Report {
        let database = self.database();
        let devnet = self.dir.join("devnet.json");
        let mut args = vec!["replay", id, "--json", "--database", &database, "--devnet"];
        args.push(devnet.to_str().unwrap());
        args.extend_from_slice(extra);
        serde_json::from_str(&cli(&args, &[])).unwrap()
    }

    /// The user's adapter on chain `chain` (0 or 1).
    pub fn user(&self, chain: usize) -> baton_adapters::evm::EvmAdapter {
        self.devnet.chains[chain].adapter(USER).unwrap()
    }
}

/// An answer: the status, and the body as JSON (null when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl Answer {
    /// The body as `T`; panics (with the body) when the status is not `status`.
    #[track_caller]
    pub fn body_as<T: DeserializeOwned>(self, status: u16) -> T {
        assert_eq!(self.status, status, "{}", self.body);
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The error body, asserting the status and code.
    #[track_caller]
    pub fn error(self, status: u16, code: &str) -> ErrorBody {
        let body: ErrorBody = self.body_as(status);
        assert_eq!(
            serde_json::to_value(body.code).unwrap(),
            code,
            "{}",
            body.message
        );
        body
    }
}

impl Server {
    /// `method path` with `key` and a JSON `body`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let http = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
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
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Answer {
            status,
            retry_after,
            body: response.json().await.unwrap_or(Value::Null),
        }
    }

    /// Quotes `intent` and signs its orders as `signer`, from the quote's typed data, as a wallet
    /// would.
    pub async fn quote_and_sign(&self, intent: &Value, signer: &PrivateKeySigner) -> Value {
        let quote = self
            .call("POST", "/v1/quotes", Some(DAPP), Some(intent.clone()))
            .await;
        assert_eq!(quote.status, 200, "{}", quote.body);
        baton_api::wallet::sign_quote(&quote.body, signer).unwrap()
    }

    /// Submits signed orders as the dApp; the intent is accepted.
    pub async fn submit(&self, signed: &Value) -> Accepted {
        self.call("POST", "/v1/intents", Some(DAPP), Some(signed.clone()))
            .await
            .body_as(202)
    }

    /// Intent `id` as it stands.
    pub async fn view(&self, id: &str) -> SagaView {
        self.call("GET", &format!("/v1/intents/{id}"), Some(DAPP), None)
            .await
            .body_as(200)
    }

    /// Polls intent `id` until `done` holds of its view (two minutes at most).
    pub async fn view_until(&self, id: &str, done: impl Fn(&SagaView) -> bool) -> SagaView {
        let started = Instant::now();
        loop {
            let view = self.view(id).await;
            if done(&view) {
                return view;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not there in two minutes: {view:#?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Polls intent `id` until it has an outcome.
    pub async fn outcome(&self, id: &str) -> SagaView {
        self.view_until(id, |view| view.outcome.is_some()).await
    }

    /// Intent `id`'s events stream, read to its end.
    pub async fn events(&self, id: &str) -> String {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/intents/{id}/events", self.base))
            .bearer_auth(DAPP)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::timeout(Duration::from_secs(120), response.text())
            .await
            .expect("the stream ends at the outcome")
            .unwrap()
    }
}

/// The example intent `file` of `fixtures/intents`, as `POST /v1/quotes` takes it.
pub fn intent(file: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/intents/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("expect");
    v
}

/// `who`'s balance of `token` through `adapter`.
pub async fn balance(adapter: &dyn ChainAdapter, token: Address, who: Address) -> U256 {
    adapter.balance(token, who).await.unwrap()
}

/// Sets `adapter`'s account's allowance of `token` to `spender` to `amount`, and waits until it
/// is in a block (as the node says, not a follower).
pub async fn approve(adapter: &dyn ChainAdapter, token: Address, spender: Address, amount: U256) {
    use baton_adapters::port::{Fees, Op, TxRequest, TxStatus};
    let base_fee = adapter.conditions().await.unwrap().base_fee;
    let fees = Fees {
        gas_limit: 100_000,
        max_fee_per_gas: base_fee.saturating_mul(2) + 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
    };
    let op = Op::Approve {
        token,
        spender,
        amount,
    };
    let tx = adapter.prepare(TxRequest::new(op, fees)).await.unwrap();
    adapter.broadcast(&tx).await.unwrap();
    let started = Instant::now();
    loop {
        if let TxStatus::Included(inc) = adapter.status(&tx, None).await.unwrap() {
            assert!(inc.success, "the approval reverted");
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not included");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
