//! Coordinated changes on the devnet, driven as an operator would with `baton config` and REST: a
//! fresh deployment's file is version 1 with its approvers; a change is proposed from the active
//! bundle and validated against the chains (a wrong chain id, a contract whose code hash differs,
//! an address without code are rejected, with what was found); two of three approvers approve it
//! (a key outside the set cannot), it is scheduled, staged and activated at its time; the
//! instance switches to it (its fee quoted), runs it again after a restart (not its file), and an
//! intent admitted under it is fulfilled; a rollback restarts version 1 through the same
//! lifecycle and the instance switches back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy::consensus::Transaction;
use alloy::primitives::{Address, B256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use baton_adapters::contracts::OriginSettler;
use baton_adapters::devnet::{USER, dev_signer};
use baton_api::dto::saga::Outcome;
use baton_engine::changes::{Changes, State, approval_message};
use baton_engine::{Db, SagaLog};
use serde_json::{Value, json};

use crate::stack::{ADMIN, DAPP, OPS, Server, Stack, cli, intent};

const VERSIONS: &str = "/v1/operator/config/versions";

/// Fixed approver keys (any three distinct keys do).
fn approver(n: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(0x40 + n)).unwrap()
}

/// `baton config ARGS` against `server` with the operator's key; its standard output.
fn config(server: &Server, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["config"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--server", &server.base]);
    let mut env = env.to_vec();
    env.push(("BATON_API_KEY", OPS));
    cli(&all, &env)
}

/// Version `id` (or number) once `done` holds of its state (validation and activation are the
/// instances' pull, every second).
async fn once(server: &Server, id: &str, done: impl Fn(&str) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let detail = server
            .call("GET", &format!("{VERSIONS}/{id}"), Some(OPS), None)
            .await
            .body_as::<Value>(200);
        if done(detail["version"]["state"].as_str().unwrap()) {
            return detail;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "version {id} stayed as it was: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Version `id` once validation has decided it.
async fn decided(server: &Server, id: &str) -> Value {
    once(server, id, |s| s != "proposed").await
}

/// The last transition's detail.
fn last_detail(detail: &Value) -> String {
    let history = detail["history"].as_array().unwrap();
    history.last().unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The solver's fee quoted for the first example intent, in its input token.
async fn solver_fee(server: &Server) -> u128 {
    let quote = server
        .call(
            "POST",
            "/v1/quotes",
            Some(DAPP),
            Some(intent("01-usdc-a-to-weth-b.json")),
        )
        .await
        .body_as::<Value>(200);
    quote["fees"][0]["solver_fee"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `fee` is `ratio` times `fee_v1`, within 1 % (a fee is taken from what is left after gas, and
/// gas prices move).
fn about(fee: u128, fee_v1: u128, ratio: f64) {
    let found = fee as f64 / fee_v1 as f64;
    assert!(
        (found - ratio).abs() < ratio / 100.0,
        "{fee} is not {ratio} times {fee_v1}"
    );
}

/// Chain `chain`'s head, as the server sees it.
async fn chain_head(server: &Server, chain: u64) -> u64 {
    let chains = server
        .call("GET", "/v1/chains", Some(OPS), None)
        .await
        .body_as::<Value>(200);
    chains
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chain"] == chain)
        .and_then(|c| c["head"].as_u64())
        .unwrap()
}

/// Waits until the instance runs version `number` and is not lagging.
async fn running(server: &Server, number: u64) {
    let started = Instant::now();
    loop {
        let me = instance(server).await;
        if me["running_version"].as_u64() == Some(number) && me["lagging"] == false {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the instance does not run version {number}: {me:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every instance's declaration, as `server` shows them.
async fn instances(server: &Server) -> Vec<Value> {
    let all = server
        .call("GET", "/v1/operator/instances", Some(OPS), None)
        .await
        .body_as::<Value>(200);
    all.as_array().unwrap().clone()
}

async fn instance(server: &Server) -> Value {
    let instances = server
        .call("GET", "/v1/operator/instances", Some(OPS), None)
        .await
        .body_as::<Value>(200);
    let all = instances.as_array().unwrap();
    assert_eq!(all.len(), 1, "{instances:#}");
    all[0].clone()
}

#[tokio::test]
async fn a_change_is_validated_on_the_chains_approved_by_a_quorum_activated_on_time_and_rolled_back()
 {
    let approvers: Vec<String> = (1..=3)
        .map(|n| format!("\"{}\"", approver(n).address()))
        .collect();
    let (stack, mut server) = Stack::builder("changes")
        .config(&format!(
            "[changes]\napprovers = [{}]\nquorum = 2",
            approvers.join(", ")
        ))
        .serve()
        .await;

    // Version 1 is the file, with its approvers; the instance runs it.
    let status = config(&server, &["status"], &[]);
    assert!(status.contains("active: version 1 "), "{status}");
    let me = instance(&server).await;
    assert_eq!(me["running_version"], 1, "{me:#}");
    let fee_v1 = solver_fee(&server).await;
    assert_eq!(
        (me["alive"].as_bool(), me["lagging"].as_bool()),
        (Some(true), Some(false))
    );
    let text = config(&server, &["show", "active", "--bundle"], &[]);
    let v1: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v1["approval"]["quorum"], 2, "{v1:#}");
    assert_eq!(v1["chains"].as_array().unwrap().len(), 2);

    // Wrong chain id, another contract's code hash, an address without code: each rejected with
    // what validation found.
    let mut wrong_id = v1.clone();
    wrong_id["chains"][1]["id"] = json!(4242);
    let mut wrong_code = v1.clone();
    let token_hash = wrong_code["chains"][0]["tokens"][0]["code_hash"].clone();
    wrong_code["chains"][0]["origin_settler"]["code_hash"] = token_hash.clone();
    let mut no_code = v1.clone();
    no_code["chains"][0]["destination_settler"]["address"] =
        json!("0x000000000000000000000000000000000000dEaD");
    for (bundle, found) in [
        (wrong_id, "chain 4242: its RPC answers as chain 1002"),
        (wrong_code, "has code hash"),
        (
            no_code,
            "no code at 0x000000000000000000000000000000000000dEaD",
        ),
    ] {
        let proposed = server
            .call("POST", VERSIONS, Some(OPS), Some(bundle))
            .await
            .body_as::<Value>(201);
        let detail = decided(&server, proposed["version"]["id"].as_str().unwrap()).await;
        assert_eq!(detail["version"]["state"], "rejected", "{detail:#}");
        assert!(last_detail(&detail).contains(found), "{detail:#}");
    }
    // A bundle that does not hold together is refused at once; a dApp key cannot propose.
    let mut unreachable = v1.clone();
    unreachable["approval"]["quorum"] = json!(4);
    server
        .call("POST", VERSIONS, Some(OPS), Some(unreachable))
        .await
        .error(422, "invalid_config");
    server
        .call("POST", VERSIONS, Some(DAPP), Some(v1.clone()))
        .await
        .error(403, "forbidden");

    // Version 5: a higher solver fee, proposed from the active bundle with the CLI.
    let mut change = v1.clone();
    change["solver_fee_bps"] = json!(9);
    let file = stack.dir.join("change.json");
    std::fs::write(&file, serde_json::to_string_pretty(&change).unwrap()).unwrap();
    let out = config(&server, &["propose", file.to_str().unwrap(), "--wait"], &[]);
    assert!(
        out.contains("version 5 ") && out.contains("validated"),
        "{out}"
    );
    assert!(
        out.contains("checked chain 1001: its id, and the code of"),
        "{out}"
    );
    let detail = server
        .call("GET", &format!("{VERSIONS}/5"), Some(OPS), None)
        .await
        .body_as::<Value>(200);
    let id = detail["version"]["id"].as_str().unwrap().to_owned();
    let id_hash: B256 = id.parse().unwrap();
    assert_eq!(detail["approval_message"], approval_message(id_hash));

    // Not approved yet: it cannot be scheduled. A key outside the set cannot approve; one
    // approver is not a quorum, even twice; a second one is.
    server
        .call(
            "POST",
            &format!("{VERSIONS}/5/schedule"),
            Some(OPS),
            Some(json!({})),
        )
        .await
        .error(409, "conflict");
    let outsider = approver(9)
        .sign_message_sync(approval_message(id_hash).as_bytes())
        .unwrap();
    server
        .call(
            "POST",
            &format!("{VERSIONS}/{id}/approve"),
            Some(OPS),
            Some(json!({ "signature": outsider.to_string() })),
        )
        .await
        .error(422, "bad_signature");
    server
        .call(
            "POST",
            &format!("{VERSIONS}/5/approve"),
            Some(ADMIN),
            Some(json!({})),
        )
        .await
        .error(422, "invalid_combination");
    let key_file = stack.dir.join("approver-1.key");
    std::fs::write(&key_file, format!("{}\n", approver(1).to_bytes())).unwrap();
    for _ in 0..2 {
        let out = config(
            &server,
            &["approve", "5", "--key-file", key_file.to_str().unwrap()],
            &[],
        );
        assert!(
            out.contains("validated") && out.contains("approvals: 1 (quorum 2 of 3)"),
            "{out}"
        );
    }
    let key_2 = approver(2).to_bytes().to_string();
    let out = config(
        &server,
        &["approve", &id],
        &[("BATON_APPROVER_KEY", &key_2)],
    );
    assert!(
        out.contains(" approved ") && out.contains("approvals: 2"),
        "{out}"
    );

    // Scheduled for three seconds from now: pulled and staged (made ready) first, then active at
    // its time.
    let out = config(&server, &["schedule", "5", "--in", "3"], &[]);
    assert!(out.contains("scheduled"), "{out}");
    let started = Instant::now();
    while instance(&server).await["staged"].as_str() != Some(id.as_str()) {
        assert!(started.elapsed() < Duration::from_secs(2), "not staged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detail = once(&server, "5", |s| s == "active").await;
    let at = detail["version"]["activate_at_ms"].as_i64().unwrap();
    let activated = detail["history"].as_array().unwrap().last().unwrap()["at_ms"]
        .as_i64()
        .unwrap();
    // Woken at its time rather than at the next pull: late by milliseconds on an idle machine
    // (a loaded one, running the other tests beside it, is given 1.5 s).
    eprintln!("version 5 activated {} ms after its time", activated - at);
    assert!(
        (at..at + 1_500).contains(&activated),
        "activated at {activated}, {} ms after its time",
        activated - at
    );
    let v1_now = server
        .call("GET", &format!("{VERSIONS}/1"), Some(OPS), None)
        .await
        .body_as::<Value>(200);
    assert_eq!(v1_now["version"]["state"], "superseded");
    // The instance switches to it: the new fee is quoted, without a restart.
    running(&server, 5).await;
    about(solver_fee(&server).await, fee_v1, 1.8);
    let status = config(&server, &["status"], &[]);
    assert!(
        status.contains("active: version 5 ") && status.contains("runs version 5, current"),
        "{status}"
    );

    // Restarted, it runs the active version (not its file); an intent admitted now runs under
    // version 5 to its outcome.
    drop(server);
    server = stack.serve().await;
    assert_eq!(instance(&server).await["running_version"], 5);
    about(solver_fee(&server).await, fee_v1, 1.8);
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    let saga = server.submit(&signed).await.intent_id;
    let view = server.outcome(&saga).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    let log = SagaLog::new(Db::connect(&stack.database()).await.unwrap());
    let input = log
        .input(baton_engine::event::SagaId(saga.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        input.contains(&format!("\"config_version\":\"{id}\"")),
        "{input}"
    );

    // The rollback: version 1 again, through the lifecycle, approved by version 5's approvers.
    let out = config(&server, &["rollback"], &[]);
    assert!(
        out.contains("version 1 ") && out.contains("proposed"),
        "{out}"
    );
    let v1_id = v1_now["version"]["id"].as_str().unwrap().to_owned();
    let again = decided(&server, &v1_id).await;
    assert_eq!(again["version"]["state"], "validated", "{again:#}");
    for n in [1, 3] {
        let key = approver(n).to_bytes().to_string();
        config(&server, &["approve", "1"], &[("BATON_APPROVER_KEY", &key)]);
    }
    // Scheduled at a block of chain 1001, three ahead of its head (a block a second).
    let head = chain_head(&server, 1001).await;
    let target = format!("1001:{}", head + 3);
    let out = config(&server, &["schedule", "1", "--at-block", &target], &[]);
    assert!(
        out.contains(&format!("activates at block {} of chain 1001", head + 3)),
        "{out}"
    );
    once(&server, "5", |s| s == "rolled_back").await;
    assert!(chain_head(&server, 1001).await >= head + 3);
    running(&server, 1).await;
    about(solver_fee(&server).await, fee_v1, 1.0);

    // The whole record holds, with who did what.
    let changes = Changes::new(Db::connect(&stack.database()).await.unwrap());
    assert_eq!(changes.verify().await.unwrap(), None);
    let of_five: Vec<(State, String)> = changes
        .history(Some(id_hash))
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.to, t.by))
        .collect();
    assert_eq!(
        of_five,
        [
            (State::Proposed, "ops".to_owned()),
            (State::Validated, "e2e".to_owned()),
            (State::Approved, "ops".to_owned()),
            (State::Scheduled, "ops".to_owned()),
            (State::Active, "e2e".to_owned()),
            (State::RolledBack, "e2e".to_owned()),
        ]
    );
}

/// Three instances on PostgreSQL: two running when a version activates switch at its time; the
/// third, down then, runs it from the moment it returns (its first quote, its first intent).
#[tokio::test]
async fn instances_switch_together_and_one_that_was_down_returns_on_the_active_version() {
    let Some(db) = crate::instances::Scratch::create("changes").await else {
        return;
    };
    let stack = Stack::builder("changes-pg").database(&db.url).start().await;
    let (a, b, c) = tokio::join!(
        stack.serve_as("a"),
        stack.serve_as("b"),
        stack.serve_as("c")
    );
    let fee_v1 = solver_fee(&a).await;
    let v1: Value = a
        .call("GET", &format!("{VERSIONS}/1"), Some(OPS), None)
        .await
        .body_as::<Value>(200)["bundle"]
        .clone();
    let mut change = v1.clone();
    change["solver_fee_bps"] = json!(9);
    let proposed = b
        .call("POST", VERSIONS, Some(OPS), Some(change))
        .await
        .body_as::<Value>(201);
    let id = proposed["version"]["id"].as_str().unwrap().to_owned();
    assert_eq!(decided(&a, &id).await["version"]["state"], "validated");
    // No approvers in the file: an admin key approves alone.
    admin_approves(&a, 2).await.body_as::<Value>(200);
    // A fourth instance pulls every 30 s: started now, it has pulled (and declared itself on
    // version 1) before the schedule below, and does not pull again until well after it.
    let d = stack
        .serve_with("d", &[("BATON_PULL_EVERY_SECS", "30")])
        .await;
    let started = Instant::now();
    while !instances(&a)
        .await
        .iter()
        .any(|i| i["instance"] == "d" && i["running_version"] == 1)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "d not declared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(c);
    let at = baton_engine::now_ms() + 3_000;
    b.call(
        "POST",
        &format!("{VERSIONS}/2/schedule"),
        Some(OPS),
        Some(json!({ "at_ms": at })),
    )
    .await
    .body_as::<Value>(200);
    once(&a, "2", |s| s == "active").await;
    // Both running instances switch; the one that is down is seen as down, on version 1; the
    // slow puller is alive, on version 1, lagging.
    let started = Instant::now();
    loop {
        let all = instances(&a).await;
        let by_name = |n: &str| all.iter().find(|i| i["instance"] == n).cloned().unwrap();
        let (ia, ib, ic) = (by_name("a"), by_name("b"), by_name("c"));
        if ia["running_version"] == 2 && ib["running_version"] == 2 && ic["alive"] == false {
            assert_eq!(ic["running_version"], 1, "{all:#?}");
            assert_eq!(ic["lagging"], false, "down, not lagging: {all:#?}");
            let id = by_name("d");
            assert_eq!(
                (&id["running_version"], &id["alive"], &id["lagging"]),
                (&json!(1), &json!(true), &json!(true)),
                "{all:#?}"
            );
            assert_eq!(id["pull_every_ms"], 30_000);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{all:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    about(solver_fee(&a).await, fee_v1, 1.8);
    about(solver_fee(&b).await, fee_v1, 1.8);
    // Asked for a quote before its next pull, the slow puller pulls and quotes under version 2,
    // and is no longer lagging once it has declared so (in the same pull, just after the switch).
    about(solver_fee(&d).await, fee_v1, 1.8);
    let started = Instant::now();
    loop {
        let d_now = instances(&a)
            .await
            .into_iter()
            .find(|i| i["instance"] == "d")
            .unwrap();
        if (&d_now["running_version"], &d_now["lagging"]) == (&json!(2), &json!(false)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "d has not declared version 2: {d_now:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(d);

    // The third returns: on version 2 from its first request, and its intents run under it.
    let c = stack.serve_as("c").await;
    about(solver_fee(&c).await, fee_v1, 1.8);
    let signed = c
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    let saga = c.submit(&signed).await.intent_id;
    let log = SagaLog::new(Db::connect(&db.url).await.unwrap());
    let input = log
        .input(baton_engine::event::SagaId(saga.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        input.contains(&format!("\"config_version\":\"{id}\"")),
        "{input}"
    );
    let view = c.outcome(&saga).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
}

/// A change that makes intents refund — chain 1002's settlers swapped, so fills go to the origin
/// settler and revert — with a guard on refunds that rolls back at once: its shadow run finds the
/// saga finished before ending worse, which blocks approval until an operator overrides it; then
/// the first intent under it refunds, the guard trips, brakes intake, rolls back to version 1 through the lifecycle
/// (recorded as the guard's, with why) and releases its brake once the instance runs version 1,
/// where an intent is fulfilled again.
#[tokio::test]
async fn a_shadow_run_flags_a_regression_and_a_guard_trips_on_it_and_rolls_back() {
    let (stack, server) = Stack::builder("guards").serve().await;
    // A saga finished under version 1: what a shadow run re-runs.
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    let first = server.submit(&signed).await.intent_id;
    let view = server.outcome(&first).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    let text = config(&server, &["show", "active", "--bundle"], &[]);
    let v1: Value = serde_json::from_str(&text).unwrap();
    let mut bad = v1.clone();
    let dest = &mut bad["chains"][1];
    assert_eq!(dest["id"], 1002);
    let origin = dest["origin_settler"].clone();
    dest["origin_settler"] = dest["destination_settler"].clone();
    dest["destination_settler"] = origin;
    bad["guards"] = json!({
        "window_secs": 600,
        "min_outcomes": 1,
        "max_refunded_bps": 0,
        "max_failed_bps": 0,
        "max_rpc_error_bps": null,
        "rollback_at_once": true,
    });
    // Both settlers have the code the bundle declares: the chains' checks pass, but the shadow
    // run re-runs the saga on forks under the change, and it no longer ends fulfilled.
    let proposed = server
        .call("POST", VERSIONS, Some(OPS), Some(bad))
        .await
        .body_as::<Value>(201);
    let id = proposed["version"]["id"].as_str().unwrap().to_owned();
    let detail = decided(&server, &id).await;
    assert_eq!(detail["version"]["state"], "validated", "{detail:#}");
    let shadow = &detail["shadow"];
    assert_eq!(
        (&shadow["sagas"], &shadow["regressions"]),
        (&json!(1), &json!(1)),
        "{detail:#}"
    );
    let rerun = &shadow["report"]["sagas"][0];
    assert_eq!(
        (&rerun["saga"], &rerun["before"], &rerun["regression"]),
        (&json!(first), &json!("fulfilled"), &json!(true)),
        "{detail:#}"
    );
    eprintln!("version 2 validated: {}", last_detail(&detail));
    assert!(
        last_detail(&detail).contains("1 ending worse"),
        "{detail:#}"
    );
    // The regression blocks approval until an operator overrides it, with a reason.
    admin_approves(&server, 2).await.error(409, "conflict");
    let out = config(
        &server,
        &["override", "2", "--reason", "testing the guard"],
        &[],
    );
    assert!(
        out.contains("1 ending worse") && out.contains("overridden by ops: testing the guard"),
        "{out}"
    );
    admin_approves(&server, 2).await.body_as::<Value>(200);
    server
        .call(
            "POST",
            &format!("{VERSIONS}/2/schedule"),
            Some(OPS),
            Some(json!({})),
        )
        .await
        .body_as::<Value>(200);
    once(&server, "2", |s| s == "active").await;
    running(&server, 2).await;

    // The first intent under version 2 refunds; the guard trips on it.
    let mut second = intent("01-usdc-a-to-weth-b.json");
    second["nonce"] = json!("2");
    let signed = server.quote_and_sign(&second, &dev_signer(USER)).await;
    let saga = server.submit(&signed).await.intent_id;
    let view = server.outcome(&saga).await;
    assert_eq!(view.outcome, Some(Outcome::Refunded), "{view:#?}");
    let rolled = once(&server, "2", |s| s == "rolled_back").await;
    let v1_now = once(&server, "1", |s| s == "active").await;
    let history: Vec<(String, String, String)> = v1_now["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let field = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
            (field("to"), field("by"), field("detail"))
        })
        .collect();
    let guard = "guard (e2e)".to_owned();
    let after: Vec<&(String, String, String)> = history
        .iter()
        .skip_while(|(to, ..)| to != "superseded")
        .skip(1)
        .collect();
    let states: Vec<(&str, &str)> = after
        .iter()
        .map(|(to, by, _)| (to.as_str(), by.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("proposed", guard.as_str()),
            ("validated", guard.as_str()),
            ("approved", guard.as_str()),
            ("scheduled", guard.as_str()),
            ("active", guard.as_str()),
        ],
        "{rolled:#}\n{v1_now:#}"
    );
    assert!(
        after[0].2.contains(
            "rollback from version 2: the guard of configuration version 2 tripped: 1 of the 1 \
             intents admitted under it were refunded"
        ),
        "{history:#?}"
    );

    // Intake was braked by the guard and released once the instance ran version 1.
    running(&server, 1).await;
    let started = Instant::now();
    loop {
        let pauses = server
            .call("GET", "/v1/operator/pauses", Some(OPS), None)
            .await
            .body_as::<Value>(200);
        if pauses.as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the brake stays: {pauses:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let actions = server
        .call("GET", "/v1/operator/actions", Some(OPS), None)
        .await
        .body_as::<Value>(200);
    let by_guard: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["by"] == guard.as_str())
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(by_guard.len(), 2, "{actions:#}");

    // Version 1's behaviour is back: an intent is fulfilled.
    let mut again = intent("01-usdc-a-to-weth-b.json");
    again["nonce"] = json!("3");
    let signed = server.quote_and_sign(&again, &dev_signer(USER)).await;
    let saga = server.submit(&signed).await.intent_id;
    let view = server.outcome(&saga).await;
    assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
    let changes = Changes::new(Db::connect(&stack.database()).await.unwrap());
    assert_eq!(changes.verify().await.unwrap(), None);
}

/// An admin key's approval of version `number` (where the active version names no approvers, it
/// approves alone).
async fn admin_approves(server: &Server, number: u64) -> crate::stack::Answer {
    server
        .call(
            "POST",
            &format!("{VERSIONS}/{number}/approve"),
            Some(ADMIN),
            Some(json!({})),
        )
        .await
}

/// Waits until each of `count` instances runs version `number` and none lags.
async fn every_instance_runs(server: &Server, number: u64, count: usize) {
    let started = Instant::now();
    loop {
        let all = instances(server).await;
        let on_it = all
            .iter()
            .filter(|i| i["running_version"].as_u64() == Some(number) && i["lagging"] == false)
            .count();
        if on_it == count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not every instance runs version {number}: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One intent of the settler upgrade's stream: 1,000 USDC on `from` for WETH on the other chain.
fn swap(from: u64, nonce: u64) -> Value {
    let mut it = intent("01-usdc-a-to-weth-b.json");
    let to = if from == 1001 { 1002 } else { 1001 };
    it["nonce"] = json!(nonce.to_string());
    it["inputs"][0]["chain"] = json!(from);
    it["outputs"][0]["chain"] = json!(to);
    it
}

/// `event`'s logs at `address` on `chain`, from its first block.
async fn logs_of(
    chain: &baton_adapters::devnet::DevnetChain,
    address: Address,
    event: B256,
) -> usize {
    let filter = Filter::new()
        .address(address)
        .event_signature(event)
        .from_block(0u64);
    chain.provider.get_logs(&filter).await.unwrap().len()
}

/// A settler upgrade on both chains while intents run both ways: version 2 names a new settler
/// pair on each chain (deployed beside the old ones, with the same attester set; the attesters
/// trust both). Its shadow run re-runs a finished saga on the new settlers (its orders signed by
/// a stand-in user on the forks: the user signed for the old ones) and finds no regression. Every intent ends fulfilled or refunded; those admitted under
/// version 1 run to their end on the old settlers (one still running at activation), those
/// admitted after it on the new ones; the chains' own logs show nothing opened on an old settler
/// by an intent admitted after activation. With `DATABASE_URL` set (CI), two instances on
/// PostgreSQL take the intents in turn; else one on SQLite.
#[tokio::test]
async fn a_settler_upgrade_across_two_chains_while_intents_run_opens_nothing_on_the_old_settlers() {
    let pg = crate::instances::Scratch::create("upgrade").await;
    let mut builder = Stack::builder("upgrade")
        .spare_settlers()
        .config("[changes]\nshadow-sagas = 1");
    if let Some(db) = &pg {
        builder = builder.database(&db.url);
    }
    let stack = builder.start().await;
    let servers = match &pg {
        Some(_) => {
            let (a, b) = tokio::join!(stack.serve_as("a"), stack.serve_as("b"));
            vec![a, b]
        }
        None => vec![stack.serve().await],
    };
    let server = &servers[0];
    let text = config(server, &["show", "active", "--bundle"], &[]);
    let v1: Value = serde_json::from_str(&text).unwrap();
    let mut v2 = v1.clone();
    for (i, chain) in stack.devnet.chains.iter().enumerate() {
        let spare = chain.other_settlers[0];
        let entry = &mut v2["chains"][i];
        assert_eq!(entry["id"], chain.chain_id);
        for (field, address) in [
            ("origin_settler", spare.origin),
            ("destination_settler", spare.destination),
        ] {
            let code = chain.provider.get_code_at(address).await.unwrap();
            entry[field] = json!({ "address": address, "code_hash": keccak256(&code) });
        }
    }

    // Intents, alternating directions, one every 600 ms until told to stop; each quoted and
    // submitted as a dApp would, quoted again when the version changed between the two.
    let stop = AtomicBool::new(false);
    let accepted: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut requoted = 0;
    let intents = async {
        let mut nonce = 1u64;
        while !stop.load(Ordering::Relaxed) {
            let from = if nonce % 2 == 1 { 1001 } else { 1002 };
            // Quoted and submitted on one instance, the next intent on the next.
            let server = &servers[nonce as usize % servers.len()];
            let quote = server
                .call("POST", "/v1/quotes", Some(DAPP), Some(swap(from, nonce)))
                .await;
            if quote.status == 200 {
                let signed = baton_api::wallet::sign_quote(&quote.body, &dev_signer(USER)).unwrap();
                let sent = server
                    .call("POST", "/v1/intents", Some(DAPP), Some(signed))
                    .await;
                if sent.status == 202 {
                    let id = sent.body_as::<Value>(202)["intent_id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    accepted.lock().unwrap().push(id);
                    nonce += 1;
                } else {
                    // Quoted under version 1, submitted under 2 (its orders name the old
                    // settlers), or the instance switching.
                    eprintln!("submit {nonce}: {} {}", sent.status, sent.body);
                    assert!([422, 503].contains(&sent.status), "{}", sent.body);
                    requoted += 1;
                }
            } else {
                eprintln!("quote {nonce}: {} {}", quote.status, quote.body);
                assert_eq!(quote.status, 503, "{}", quote.body);
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    };
    let operate = async {
        // A saga finished under version 1 (what the shadow run re-runs).
        let first = loop {
            if let Some(id) = accepted.lock().unwrap().first().cloned() {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let view = server.outcome(&first).await;
        assert_eq!(view.outcome, Some(Outcome::Fulfilled), "{view:#?}");
        let proposed = server
            .call("POST", VERSIONS, Some(OPS), Some(v2.clone()))
            .await
            .body_as::<Value>(201);
        let id = proposed["version"]["id"].as_str().unwrap().to_owned();
        let detail = decided(server, &id).await;
        assert_eq!(detail["version"]["state"], "validated", "{detail:#}");
        assert_eq!(
            (&detail["shadow"]["sagas"], &detail["shadow"]["regressions"]),
            (&json!(1), &json!(0)),
            "{detail:#}"
        );
        assert!(
            last_detail(&detail).contains(
                "1 saga(s) ran on settlers the version replaces: re-run on the new ones, their \
                 orders signed by a stand-in user holding the user's inputs on the forks"
            ),
            "{detail:#}"
        );
        // What the saga delivered and how fast, as it ran and on the forks.
        let rerun = &detail["shadow"]["report"]["sagas"][0];
        eprintln!("the shadow run's saga: {rerun:#}");
        for field in ["delivered_before", "delivered_after"] {
            assert!(rerun[field][0].is_string(), "{field}: {rerun:#}");
        }
        for field in ["secs_before", "secs_after"] {
            assert!(rerun[field].is_u64(), "{field}: {rerun:#}");
        }
        admin_approves(server, 2).await.body_as::<Value>(200);
        let out = config(server, &["schedule", "2", "--in", "3"], &[]);
        assert!(out.contains("scheduled"), "{out}");
        let active = once(server, "2", |s| s == "active").await;
        every_instance_runs(server, 2, servers.len()).await;
        // Intents go on after it until four more were admitted.
        let at_switch = accepted.lock().unwrap().len();
        while accepted.lock().unwrap().len() < at_switch + 4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.store(true, Ordering::Relaxed);
        active
    };
    let (_, active) = tokio::join!(intents, operate);
    let v2_id = active["version"]["id"].as_str().unwrap().to_owned();
    let activated = active["history"].as_array().unwrap().last().unwrap()["at_ms"]
        .as_i64()
        .unwrap();

    // Every intent's outcome, the version it was admitted under, and where its transactions went.
    let database = pg
        .as_ref()
        .map_or_else(|| stack.database(), |db| db.url.clone());
    let log = SagaLog::new(Db::connect(&database).await.unwrap());
    let ids = accepted.into_inner().unwrap();
    let mut under = [0usize; 2];
    let mut in_flight_at_activation = 0;
    let (mut opened_old, mut opened_new) = ([0usize; 2], [0usize; 2]);
    for id in &ids {
        let view = server.outcome(id).await;
        assert!(
            matches!(
                view.outcome,
                Some(Outcome::Fulfilled) | Some(Outcome::Refunded)
            ),
            "{view:#?}"
        );
        let input = log
            .input(baton_engine::event::SagaId(id.parse().unwrap()))
            .await
            .unwrap()
            .unwrap();
        let v = usize::from(input.contains(&format!("\"config_version\":\"{v2_id}\"")));
        under[v] += 1;
        if v == 0 {
            // Admitted before the activation (its instance switches at the transition's commit,
            // read before every admission).
            assert!(
                view.created_ms <= activated,
                "{id} admitted under version 1 after it"
            );
            if view.updated_ms > activated {
                in_flight_at_activation += 1;
            }
        }
        for step in &view.steps {
            let Some(tx) = &step.progress.tx else {
                continue;
            };
            let chain = stack
                .devnet
                .chains
                .iter()
                .position(|c| c.chain_id == step.chain)
                .unwrap();
            let devnet = &stack.devnet.chains[chain];
            let sent = devnet
                .provider
                .get_transaction_by_hash(tx.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            let to = sent.to().unwrap();
            let (old, new) = (devnet.settlers(), devnet.other_settlers[0]);
            let wrong = if v == 0 { new } else { old };
            assert!(
                to != wrong.origin && to != wrong.destination,
                "intent {id} (version {}) sent {} to a settler of the other version",
                v + 1,
                step.action
            );
            if step.action.starts_with("open") {
                assert_eq!(
                    to,
                    if v == 0 { old.origin } else { new.origin },
                    "{view:#?}"
                );
                if v == 0 {
                    opened_old[chain] += 1;
                } else {
                    opened_new[chain] += 1;
                }
            }
        }
    }
    eprintln!(
        "{} intents: {} under version 1 ({in_flight_at_activation} in flight at activation), {} \
         under version 2, {requoted} quoted again",
        ids.len(),
        under[0],
        under[1]
    );
    assert!(under[1] >= 4 && under[0] >= 2, "{under:?}");
    assert!(
        in_flight_at_activation >= 1,
        "no saga of version 1 was still running at activation"
    );
    // The chains' own record: each origin settler's `Open` events are the opens of the intents
    // of its version, and nothing else.
    for (i, chain) in stack.devnet.chains.iter().enumerate() {
        let open = OriginSettler::Open::SIGNATURE_HASH;
        assert_eq!(
            logs_of(chain, chain.origin_settler, open).await,
            opened_old[i],
            "chain {}'s old origin settler",
            chain.chain_id
        );
        assert_eq!(
            logs_of(chain, chain.other_settlers[0].origin, open).await,
            opened_new[i],
            "chain {}'s new origin settler",
            chain.chain_id
        );
        assert!(
            opened_new[i] >= 1,
            "nothing opened on chain {}",
            chain.chain_id
        );
    }
}
