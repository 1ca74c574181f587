//! A dApp's intent fulfilled over REST on two anvil chains: submitted with the CLI, followed over
//! Server-Sent Events and `baton status --follow`, the recipient paid, the outcome counted in the
//! metrics, and the saga replayed on forks exactly as recorded.

use std::process::Command;

use alloy::primitives::{Address, U256};
use baton_adapters::devnet::SOLVER;
use baton_api::dto::saga::{Outcome, StepStatus};

use crate::stack::{DAPP, RECIPIENT, Stack, balance, cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dapp_submits_with_the_cli_follows_the_events_and_the_recipient_is_paid() {
    let (stack, server) = Stack::builder("fulfilled").serve().await;
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
    let text = server.events(&id).await;
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
    let view = server.outcome(&id).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    let fill = view.steps.iter().find(|s| s.action == "fill").unwrap();
    assert_eq!(fill.progress.state, StepStatus::Final);
    assert!(fill.progress.tx.is_some() && fill.progress.confirmations.unwrap() >= 1);

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
    // And the solver's RPC requests by method: the open and the fill were broadcast.
    let sent: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("baton_rpc_method_calls_total")
                && l.contains("method=\"eth_sendRawTransaction\"")
        })
        .collect();
    assert_eq!(sent.len(), 2, "one line per chain: {metrics}");
    // Each chain's follower: the block its view reflects, and reads it answered itself.
    let value = |prefix: &str| -> Vec<f64> {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let blocks = value("baton_follower_block{");
    assert!(
        blocks.len() == 2 && blocks.iter().all(|b| *b > 0.0),
        "{metrics}"
    );
    let from_view: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("baton_follower_reads_total") && l.contains("answered=\"view\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(from_view > 0.0, "{metrics}");

    // Replayed on forks, the fulfilled saga ends exactly as recorded.
    let report = stack.replay(&id, &[]);
    assert!(report.reproduced, "{report:#?}");
    assert!(report.first_divergence.is_none() && report.failing_step.is_none());
    assert!(report.steps.len() >= 3, "{report:#?}");
}
