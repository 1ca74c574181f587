//! The operators' console in a real browser: Debian's Chromium, headless, driven by
//! `tests/console/console.mjs` (playwright-core from npm, pointed at the system browser; nothing
//! is downloaded) against a `baton serve` on two anvil chains. The test submits intents and tells
//! the driver, one line at a time, what to look at; the driver answers with what the page showed
//! and keeps a screenshot of each step in `target/console-screenshots/`.
//!
//! It fails unless the DAG shows each step's state as it changes, a refunded saga shows its
//! compensation, and the brake button pauses intake. Without Node.js, `npm ci` or Chromium (the
//! Debian package `chromium`) it fails, saying which is missing.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use baton_adapters::devnet::{USER, dev_signer};
use baton_api::dto::saga::{Outcome, SagaView};
use serde_json::{Value, json};

use crate::refunded::submit_and_drain;
use crate::stack::{ADMIN, DAPP, OPS, Process, Server, Stack, intent};

/// The console driver: a node process with a headless Chromium, answering one line per command.
struct Browser {
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    errors: PathBuf,
    node: Process,
}

impl Browser {
    fn start(root: &Path, server: &Server, shots: &Path, errors: PathBuf) -> Self {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "the console test needs Chromium at {chromium} (Debian: apt-get install chromium)"
        );
        assert!(
            root.join("node_modules/playwright-core/package.json")
                .exists(),
            "the console test needs playwright-core: run `npm ci` in {}",
            root.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("tests/console/console.mjs"))
            .current_dir(root)
            .env("BATON_SERVER", &server.base)
            .env("BATON_KEY", ADMIN)
            .env("BATON_SHOTS", shots)
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&errors).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("node (Node.js 20) is needed for the console test: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let browser = Self {
            stdin,
            lines,
            errors,
            node: Process(child),
        };
        let first = browser.next_line(Duration::from_secs(90));
        assert_eq!(
            first,
            "ready",
            "the driver did not log in{}",
            browser.said()
        );
        browser
    }

    /// What the driver wrote to its standard error.
    fn said(&self) -> String {
        let text = std::fs::read_to_string(&self.errors).unwrap_or_default();
        if text.is_empty() {
            String::new()
        } else {
            format!("; its standard error:\n{text}")
        }
    }

    fn next_line(&self, within: Duration) -> String {
        tokio::task::block_in_place(|| self.lines.recv_timeout(within)).unwrap_or_else(|e| {
            panic!(
                "no answer from the console driver in {within:?} ({e}){}",
                self.said()
            )
        })
    }

    /// Sends `command` and returns the driver's `ok` answer; panics on `fail`.
    fn ask(&mut self, command: &str, within: Duration) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let line = self.next_line(within);
        match line.split_once(' ') {
            Some(("ok", json)) => {
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{command}: {e}: {json}"))
            }
            _ => panic!(
                "{command}: the console driver answered {line}{}",
                self.said()
            ),
        }
    }

    /// Closes the browser; the driver exits 0.
    fn quit(mut self) {
        writeln!(self.stdin, "quit").unwrap();
        self.stdin.flush().unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.node.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the console driver did not quit{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            status.success(),
            "the driver exited with {status}{}",
            self.said()
        );
    }
}

/// The sequence of states the driver saw step `id` go through.
fn seen(answer: &Value, which: &str, id: u32) -> Vec<String> {
    answer[which][id.to_string()]
        .as_array()
        .unwrap_or_else(|| panic!("no {which} of step {id} in {answer}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_draws_sagas_live_shows_compensations_and_its_brake_stops_intake() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let (stack, server) = Stack::builder("console").serve().await;
    let mut browser = Browser::start(root, &server, &shots, stack.dir.join("console.err"));
    let user = dev_signer(USER);

    // 1. A saga watched from before its first transaction: the origin chain is paused while it
    //    is admitted, so every step is pending when the page opens; then it runs to completed.
    let origin = stack.devnet.chains[0].chain_id;
    let pause = json!({ "reason": "hold the first step until the console watches" });
    let paused = server
        .call(
            "POST",
            &format!("/v1/operator/chains/{origin}/pause"),
            Some(OPS),
            Some(pause),
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &user)
        .await;
    let id = server.submit(&signed).await.intent_id;
    // The page is open, every step drawn (pending: nothing can start on the paused chain); then
    // the chain resumes and the page is watched to the end.
    let opened = browser.ask(&format!("open {id}"), Duration::from_secs(60));
    assert!(opened["nodes"].as_u64().unwrap() >= 2, "{opened}");
    let resumed = server
        .call(
            "POST",
            &format!("/v1/operator/chains/{origin}/resume"),
            Some(OPS),
            None,
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let watched = browser.ask(&format!("watch {id}"), Duration::from_secs(180));
    let view: SagaView = server.view(&id).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    assert_eq!(watched["outcome"], "fulfilled", "{watched}");
    for step in &view.steps {
        let states = seen(&watched, "states", step.id);
        assert_eq!(
            states.first().map(String::as_str),
            Some("pending"),
            "step {} ({}) was not seen pending: {states:?}",
            step.id,
            step.action
        );
        assert_eq!(
            states.last().map(String::as_str),
            Some("final"),
            "step {} ({}) was not seen final: {states:?}",
            step.id,
            step.action
        );
    }
    // Transactions were seen waiting in between (each is `sent` for about a block; the page
    // follows the events, so one missed under load is not a failure, all of them would be).
    let sent = view
        .steps
        .iter()
        .filter(|s| seen(&watched, "states", s.id) == ["pending", "sent", "final"])
        .count();
    assert!(sent >= 1, "no step was seen sent: {watched}");
    let pivots: Vec<u64> = view
        .steps
        .iter()
        .filter(|s| s.pivot)
        .map(|s| u64::from(s.id))
        .collect();
    assert_eq!(watched["pivot"], json!(pivots), "{watched}");
    let mut edges: Vec<(u64, u64)> = view
        .steps
        .iter()
        .flat_map(|s| {
            s.depends_on
                .iter()
                .map(|d| (u64::from(*d), u64::from(s.id)))
        })
        .collect();
    edges.sort_unstable();
    let mut drawn: Vec<(u64, u64)> = serde_json::from_value(watched["edges"].clone()).unwrap();
    drawn.sort_unstable();
    assert_eq!(drawn, edges, "the DAG's edges are the plan's dependencies");
    assert!(
        watched["events"].as_u64().unwrap() >= view.steps.len() as u64,
        "{watched}"
    );

    // 2. A refunded saga shows what failed and the compensation that gave the user's input back.
    let refunded = submit_and_drain(&stack, &server).await;
    let shown = browser.ask(&format!("refunded {refunded}"), Duration::from_secs(240));
    let view = server.view(&refunded).await;
    assert_eq!(view.outcome, Some(Outcome::Refunded), "{view:#?}");
    let node = |action: &str| {
        let step = view.steps.iter().find(|s| s.action == action).unwrap();
        shown["nodes"][step.id.to_string()].clone()
    };
    assert_eq!(node("swap")["state"], "failed", "{shown}");
    assert_eq!(node("open")["state"], "final", "{shown}");
    assert_eq!(
        node("open")["comp"],
        "final",
        "the refund is shown: {shown}"
    );

    // 3. The list filters by outcome; the charts count both outcomes; inventory and webhooks.
    let listed = browser.ask("sagas", Duration::from_secs(30));
    assert_eq!(listed["ids"], json!([refunded]), "{listed}");
    let charted = browser.ask("outcomes", Duration::from_secs(30));
    assert_eq!(charted["bars"]["fulfilled"], 1, "{charted}");
    assert_eq!(charted["bars"]["refunded"], 1, "{charted}");
    assert!(charted["latency"].as_u64().unwrap() >= 2, "{charted}");
    let held = browser.ask("inventory", Duration::from_secs(30));
    let tokens: usize = stack.devnet.chains.iter().map(|c| c.tokens.len()).sum();
    assert_eq!(held["rows"], tokens, "{held}");
    // The configuration: version 1 (the file) active, the instance running it, its record.
    let changes = browser.ask("changes", Duration::from_secs(30));
    assert_eq!(
        changes["versions"],
        json!([{"number": 1, "state": "active"}]),
        "{changes}"
    );
    assert_eq!(
        changes["instances"],
        json!([{"name": "e2e", "running": "1", "lagging": false}]),
        "{changes}"
    );
    assert_eq!(changes["state"], "active", "{changes}");
    // proposed, validated, approved, scheduled, active.
    assert_eq!(changes["record"], 5, "{changes}");
    let hook = browser.ask(
        "webhook http://127.0.0.1:9/console-hook",
        Duration::from_secs(30),
    );
    assert_eq!(hook["secret_shown"], true, "{hook}");
    let hooks = server.call("GET", "/v1/webhooks", Some(ADMIN), None).await;
    assert_eq!(
        hooks.body[0]["url"], "http://127.0.0.1:9/console-hook",
        "{}",
        hooks.body
    );

    // 4. The brake button pauses intake: a dApp's next intent is refused until an admin releases.
    browser.ask("brake", Duration::from_secs(30));
    let pauses = server
        .call("GET", "/v1/operator/pauses", Some(OPS), None)
        .await;
    assert_eq!(pauses.body[0]["scope"], "all", "{}", pauses.body);
    assert_eq!(pauses.body[0]["by"], "admin", "{}", pauses.body);
    assert_eq!(pauses.body[0]["reason"], "brake test from the console");
    let mut next = intent("01-usdc-a-to-weth-b.json");
    next["nonce"] = json!("7");
    let signed = server.quote_and_sign(&next, &user).await;
    let refused = server
        .call("POST", "/v1/intents", Some(DAPP), Some(signed.clone()))
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["code"], "paused", "{}", refused.body);
    browser.ask("release", Duration::from_secs(30));
    let pauses = server
        .call("GET", "/v1/operator/pauses", Some(OPS), None)
        .await;
    assert_eq!(pauses.body, json!([]));
    browser.quit();

    let pictures = std::fs::read_dir(&shots).unwrap().count();
    assert!(
        pictures >= 6,
        "{pictures} screenshots in {}",
        shots.display()
    );
}
