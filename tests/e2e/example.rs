//! The TypeScript example dApp (`examples/dapp`, on viem) against a `baton serve` on two anvil
//! chains, as a dApp developer runs it: it quotes, checks the typed data, signs, submits twice
//! with one Idempotency-Key, follows the events, sees the outcome on chain and verifies the
//! webhooks, and exits 0 only when every check held. It needs Node.js and `npm ci` (the example
//! is a workspace of the root package): without them the test fails, saying so.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use baton_adapters::devnet::{DEV_KEYS, USER};
use baton_adapters::port::ChainAdapter;
use baton_api::dto::saga::Outcome;

use crate::stack::{DAPP, Process, Stack, approve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_example_dapp_runs_an_intent_to_fulfilled_and_checks_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Compiled first (strict type-check included): a type error fails before any chain starts.
    build_example(root);
    let (stack, server) = Stack::builder("example").serve().await;
    // The user's USDC allowance to the origin settler is taken back: the example approves it.
    let origin = &stack.devnet.chains[0];
    approve(
        &stack.user(0),
        origin.tokens["USDC"],
        origin.origin_settler,
        U256::ZERO,
    )
    .await;

    let (out_file, err_file) = (stack.dir.join("example.out"), stack.dir.join("example.err"));
    let child = Command::new("node")
        .arg(root.join("examples/dapp/dist/main.js"))
        .current_dir(root)
        .env("BATON_SERVER", &server.base)
        .env("BATON_API_KEY", DAPP)
        .env("BATON_DEVNET", stack.dir.join("devnet.json"))
        .env("BATON_USER_KEY", DEV_KEYS[USER])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("node (Node.js 20) is needed to run examples/dapp: {e}"));
    // Killed if the test panics before it ends.
    let mut node = Process(child);
    let output = || {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read(&out_file), read(&err_file))
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the example still runs after five minutes:\n{}",
            output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = started.elapsed();
    let text = output();
    assert!(
        status.success(),
        "the example exited with {status}:\n{text}"
    );
    eprintln!("the example took {took:.1?}:\n{text}");

    // Each step said what it checked.
    for said in [
        "1. quote for intent 0x",
        "the settler's orderId() agrees",
        "3. chain 1001: approved the settler to pull 1000 USDC",
        "signed 1 order(s) as 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "submitted again with the key: the same intent",
        "started",
        "decided: fulfilled",
        "5. on chain 1002: 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC received",
        "7. intent 0x",
    ] {
        assert!(
            text.contains(said),
            "the example did not say {said:?}:\n{text}"
        );
    }
    assert!(text.contains("6. webhooks: "), "{text}");

    // The server agrees: the intent the example submitted is fulfilled.
    let id = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("submitted: intent "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no intent id in the output:\n{text}"));
    let view = server.outcome(id).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    // It approved exactly what the order took, and the settler took it.
    let left = stack
        .user(0)
        .allowance(
            origin.tokens["USDC"],
            stack.user(0).account(),
            origin.origin_settler,
        )
        .await
        .unwrap();
    assert_eq!(left, U256::ZERO);
}

/// `npm run build` in the example's workspace (`tsc`, strict): panics with the compiler's output
/// when npm, the installed packages or the types are not right.
fn build_example(root: &Path) {
    let out = Command::new("npm")
        .args(["run", "build", "--workspace", "examples/dapp"])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("npm (Node.js 20) is needed to build examples/dapp: {e}"));
    assert!(
        out.status.success(),
        "building examples/dapp failed (run `npm ci` at the repository's root first):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
