//! Configuration versions on both databases: content-addressed proposals, the lifecycle's
//! transitions (idempotent, refused out of order, raced by several writers and recorded once),
//! activation superseding or rolling back the version before, and the record's hash chain.

use baton_engine::EngineError;
use baton_engine::changes::{Changes, State};
use serde_json::json;

use crate::databases;

/// Moves `id` through the lifecycle to active.
async fn activate(changes: &Changes, id: alloy::primitives::B256, at: i64) {
    for (to, by) in [
        (State::Validated, "baton-1"),
        (State::Approved, "ops-a"),
        (State::Scheduled, "ops-b"),
        (State::Active, "baton-1"),
    ] {
        let v = changes.transition(id, to, by, "", at).await.unwrap();
        assert_eq!(v.state, to);
    }
}

#[tokio::test]
async fn versions_move_through_their_lifecycle_once_each_and_the_record_holds() {
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let changes = Changes::new(db.clone());
        let first = json!({ "chains": [{ "id": 1, "rpc": "http://a" }], "fee_bps": 5 });
        let proposed = changes.propose(&first, None, "ops-a", 1_000).await.unwrap();
        assert!(proposed.new, "{kind}");
        let v1 = proposed.version;
        assert_eq!((v1.number, v1.state), (1, State::Proposed), "{kind}");
        // The same bundle, written otherwise, is the same version.
        let same = json!({ "fee_bps": 5, "chains": [{ "rpc": "http://a", "id": 1 }] });
        let again = changes.propose(&same, None, "ops-b", 2_000).await.unwrap();
        assert!(!again.new, "{kind}");
        assert_eq!(again.version.id, v1.id, "{kind}");
        assert_eq!(
            v1.body,
            r#"{"chains":[{"id":1,"rpc":"http://a"}],"fee_bps":5}"#
        );

        // Out of order is refused; the state asked for again changes nothing.
        let early = changes
            .transition(v1.id, State::Active, "ops-a", "", 3_000)
            .await
            .unwrap_err();
        assert!(matches!(early, EngineError::Conflict(_)), "{kind}: {early}");
        activate(&changes, v1.id, 3_000).await;
        let records = changes.history(None).await.unwrap().len();
        let twice = changes
            .transition(v1.id, State::Active, "ops-b", "", 4_000)
            .await
            .unwrap();
        assert_eq!(twice.updated_ms, 3_000, "{kind}");
        assert_eq!(
            changes.history(None).await.unwrap().len(),
            records,
            "{kind}"
        );
        let unknown = changes
            .transition(
                alloy::primitives::B256::repeat_byte(7),
                State::Validated,
                "x",
                "",
                1,
            )
            .await
            .unwrap_err();
        assert!(matches!(unknown, EngineError::UnknownVersion(_)), "{kind}");

        // Version 2 changes version 1; five writers race each of its transitions.
        let second = json!({ "chains": [{ "id": 1, "rpc": "http://b" }], "fee_bps": 5 });
        let v2 = changes
            .propose(&second, Some(v1.id), "ops-a", 5_000)
            .await
            .unwrap()
            .version;
        assert_eq!((v2.number, v2.parent), (2, Some(v1.id)), "{kind}");
        for to in [
            State::Validated,
            State::Approved,
            State::Scheduled,
            State::Active,
        ] {
            let racers = (0..5).map(|i| {
                let changes = changes.clone();
                tokio::spawn(async move {
                    changes
                        .transition(v2.id, to, &format!("baton-{i}"), "", 6_000)
                        .await
                })
            });
            for racer in futures_util::future::join_all(racers).await {
                assert_eq!(racer.unwrap().unwrap().state, to, "{kind}");
            }
        }
        let v1_now = changes.version(v1.id).await.unwrap().unwrap();
        assert_eq!(v1_now.state, State::Superseded, "{kind}");
        assert_eq!(changes.active().await.unwrap().unwrap().id, v2.id, "{kind}");
        let of_v2: Vec<State> = changes
            .history(Some(v2.id))
            .await
            .unwrap()
            .iter()
            .map(|t| t.to)
            .collect();
        assert_eq!(
            of_v2,
            [
                State::Proposed,
                State::Validated,
                State::Approved,
                State::Scheduled,
                State::Active
            ],
            "{kind}: each transition recorded once"
        );

        // A rollback: version 1 proposed again, through its lifecycle, active again; version 2
        // is rolled back, not superseded.
        let back = changes
            .propose(&first, Some(v2.id), "ops-b", 7_000)
            .await
            .unwrap();
        assert!(!back.new, "{kind}");
        assert_eq!(back.version.state, State::Proposed, "{kind}");
        activate(&changes, v1.id, 8_000).await;
        let v2_now = changes.version(v2.id).await.unwrap().unwrap();
        assert_eq!(v2_now.state, State::RolledBack, "{kind}");
        let versions = changes.versions().await.unwrap();
        assert_eq!(versions.len(), 2, "{kind}");
        let last = changes.history(None).await.unwrap();
        let tail: Vec<(u64, State)> = last
            .iter()
            .rev()
            .take(2)
            .map(|t| (if t.version == v1.id { 1 } else { 2 }, t.to))
            .collect();
        assert_eq!(tail, [(1, State::Active), (2, State::RolledBack)], "{kind}");
        assert_eq!(changes.verify().await.unwrap(), None, "{kind}");

        // A record altered afterwards breaks the chain there.
        let sql = "UPDATE config_transitions SET by_name = 'mallory' WHERE seq = 3";
        match &db {
            baton_engine::Db::Sqlite(pool) => {
                sqlx::query(sql).execute(pool).await.unwrap();
            }
            baton_engine::Db::Postgres(pool) => {
                sqlx::query(sql).execute(pool).await.unwrap();
            }
        }
        assert_eq!(changes.verify().await.unwrap(), Some(3), "{kind}");
    }
}

#[tokio::test]
async fn a_fresh_deployment_starts_one_version_from_its_files_however_many_instances_race() {
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let changes = Changes::new(db);
        let files: Vec<serde_json::Value> = (0..4)
            .map(|i| json!({ "fee_bps": 5 + i % 2, "chains": [] }))
            .collect();
        // Four instances at once, two config files between them.
        let racers = files.iter().cloned().enumerate().map(|(i, file)| {
            let changes = changes.clone();
            tokio::spawn(
                async move { changes.bootstrap(&file, &format!("baton-{i}"), 1_000).await },
            )
        });
        let started: Vec<_> = futures_util::future::join_all(racers)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        let active = changes.active().await.unwrap().unwrap();
        for (i, (version, ours)) in started.iter().enumerate() {
            assert_eq!(
                version.id, active.id,
                "{kind}: instance {i} runs the active version"
            );
            let same = baton_engine::changes::canonical(&files[i]) == active.body;
            assert_eq!(*ours, same, "{kind}: instance {i}");
        }
        let versions = changes.versions().await.unwrap();
        assert_eq!(versions.len(), 2, "{kind}: one version per distinct file");
        let states: Vec<State> = versions.iter().map(|v| v.state).collect();
        assert!(
            states.contains(&State::Active) && states.contains(&State::Rejected),
            "{kind}: {states:?}"
        );
        // A restart with another file leaves the active version as it is.
        let other = json!({ "fee_bps": 9, "chains": [] });
        let (version, ours) = changes.bootstrap(&other, "baton-9", 2_000).await.unwrap();
        assert_eq!((version.id, ours), (active.id, false), "{kind}");
        assert_eq!(changes.versions().await.unwrap().len(), 2, "{kind}");
        assert_eq!(changes.verify().await.unwrap(), None, "{kind}");
    }
}

#[tokio::test]
async fn a_quorum_approves_a_scheduled_version_activates_on_time_and_a_rollback_restarts_the_old_one()
 {
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;
    use baton_engine::changes::{Instance, approval_message};

    let keys: Vec<PrivateKeySigner> = (0..4).map(|_| PrivateKeySigner::random()).collect();
    // Three approvers, two of whom must approve; the fourth key is no approver.
    let approvers: Vec<_> = keys[..3].iter().map(|k| k.address()).collect();
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let changes = Changes::new(db);
        let (v1, _) = changes
            .bootstrap(&json!({ "fee_bps": 5 }), "baton-1", 1_000)
            .await
            .unwrap();
        let v2 = changes
            .propose(&json!({ "fee_bps": 7 }), Some(v1.id), "ops-a", 2_000)
            .await
            .unwrap()
            .version;
        let sign = |k: &PrivateKeySigner, id| {
            k.sign_message_sync(approval_message(id).as_bytes())
                .unwrap()
        };

        // Not validated yet: no approval is taken.
        let early = changes
            .approve(v2.id, &sign(&keys[0], v2.id), &approvers, 2, "ops-a", 2_100)
            .await
            .unwrap_err();
        assert!(matches!(early, EngineError::Conflict(_)), "{kind}: {early}");
        changes
            .transition(v2.id, State::Validated, "baton-1", "checked", 2_200)
            .await
            .unwrap();

        // A key outside the set, and a signature over another version, are refused.
        let outsider = changes
            .approve(v2.id, &sign(&keys[3], v2.id), &approvers, 2, "ops-d", 2_300)
            .await
            .unwrap_err();
        assert!(
            matches!(outsider, EngineError::NotAnApprover(_)),
            "{kind}: {outsider}"
        );
        let elsewhere = changes
            .approve(v2.id, &sign(&keys[0], v1.id), &approvers, 2, "ops-a", 2_300)
            .await
            .unwrap_err();
        assert!(
            matches!(elsewhere, EngineError::NotAnApprover(_)),
            "{kind}: {elsewhere}"
        );

        // One approver, even twice, is not a quorum of two.
        for at in [2_400, 2_500] {
            let (v, approvals) = changes
                .approve(v2.id, &sign(&keys[0], v2.id), &approvers, 2, "ops-a", at)
                .await
                .unwrap();
            assert_eq!(v.state, State::Validated, "{kind}");
            assert_eq!(approvals.len(), 1, "{kind}");
        }
        let early = changes
            .schedule(v2.id, 10_000, "ops-a", 2_600)
            .await
            .unwrap_err();
        assert!(matches!(early, EngineError::Conflict(_)), "{kind}: {early}");
        let (v, approvals) = changes
            .approve(v2.id, &sign(&keys[2], v2.id), &approvers, 2, "ops-c", 2_700)
            .await
            .unwrap();
        assert_eq!(v.state, State::Approved, "{kind}");
        assert_eq!(
            approvals.iter().map(|a| a.approver).collect::<Vec<_>>(),
            [keys[0].address(), keys[2].address()],
            "{kind}"
        );

        // Scheduled for 10 s: nothing is due before, and racing instances activate it once.
        let v = changes
            .schedule(v2.id, 10_000, "ops-a", 3_000)
            .await
            .unwrap();
        assert_eq!(
            (v.state, v.activate_at_ms),
            (State::Scheduled, Some(10_000)),
            "{kind}"
        );
        assert!(
            changes
                .activate_due("baton-1", 9_999, &Default::default())
                .await
                .unwrap()
                .is_empty()
        );
        let racers = (0..3).map(|i| {
            let changes = changes.clone();
            tokio::spawn(async move {
                changes
                    .activate_due(&format!("baton-{i}"), 10_000, &Default::default())
                    .await
            })
        });
        for racer in futures_util::future::join_all(racers).await {
            racer.unwrap().unwrap();
        }
        assert_eq!(changes.active().await.unwrap().unwrap().id, v2.id, "{kind}");
        let activations = changes
            .history(Some(v2.id))
            .await
            .unwrap()
            .iter()
            .filter(|t| t.to == State::Active)
            .count();
        assert_eq!(activations, 1, "{kind}");

        // The rollback proposes version 1 again, which version 2 changed.
        let back = changes.rollback(None, "ops-b", "", 11_000).await.unwrap();
        assert_eq!((back.id, back.state), (v1.id, State::Proposed), "{kind}");
        let again = changes
            .rollback(None, "ops-b", "", 11_500)
            .await
            .unwrap_err();
        assert!(matches!(again, EngineError::Conflict(_)), "{kind}: {again}");

        // Instances declare what they run; a second declaration replaces the first.
        for (seen, staged) in [(12_000, Some(v1.id)), (13_000, None)] {
            changes
                .declare(&Instance {
                    name: "baton-2".into(),
                    running: v2.id,
                    staged,
                    started_ms: 500,
                    seen_ms: seen,
                    pull_every_ms: seen / 10,
                })
                .await
                .unwrap();
        }
        let instances = changes.instances().await.unwrap();
        assert_eq!(instances.len(), 1, "{kind}");
        assert_eq!(
            (
                instances[0].seen_ms,
                instances[0].staged,
                instances[0].pull_every_ms
            ),
            (13_000, None, 1_300),
            "{kind}"
        );
        assert_eq!(changes.verify().await.unwrap(), None, "{kind}");
    }
}

#[tokio::test]
async fn a_version_scheduled_at_a_block_activates_once_its_chain_reaches_it() {
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let changes = Changes::new(db);
        let (v1, _) = changes
            .bootstrap(&json!({ "fee_bps": 5 }), "baton-1", 1_000)
            .await
            .unwrap();
        let v2 = changes
            .propose(&json!({ "fee_bps": 6 }), Some(v1.id), "ops", 2_000)
            .await
            .unwrap()
            .version;
        for to in [State::Validated, State::Approved] {
            changes
                .transition(v2.id, to, "ops", "", 2_000)
                .await
                .unwrap();
        }
        let v = changes
            .schedule_at_block(v2.id, (1001, 50), "ops", 3_000)
            .await
            .unwrap();
        assert_eq!(
            (v.state, v.activate_at_ms, v.activate_at_block),
            (State::Scheduled, None, Some((1001, 50))),
            "{kind}"
        );
        // Not before the chain's head reaches the block, whatever the time; nor without a head.
        for heads in [
            std::collections::HashMap::new(),
            std::collections::HashMap::from([(1001, 49), (1002, 900)]),
        ] {
            let due = changes
                .activate_due("baton-1", i64::MAX, &heads)
                .await
                .unwrap();
            assert!(due.is_empty(), "{kind}: {heads:?}");
        }
        let heads = std::collections::HashMap::from([(1001, 50)]);
        let due = changes
            .activate_due("baton-1", 4_000, &heads)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "{kind}");
        assert_eq!(changes.active().await.unwrap().unwrap().id, v2.id, "{kind}");
    }
}

/// A version's shadow run is claimed by one of the instances racing for it; one left unfinished
/// too long is taken over; a finished one runs again only once the version is proposed again
/// (the claim clears what the last run found, its override too); only a finished run that found
/// a regression can be overridden, and until it is, it blocks approval.
#[tokio::test]
async fn a_shadow_run_is_claimed_once_taken_over_when_stale_and_overridden_only_for_a_regression() {
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let changes = Changes::new(db.clone());
        let v = changes
            .propose(&json!({ "fee_bps": 7 }), None, "ops", 1_000)
            .await
            .unwrap()
            .version;
        let claim = |instance: &'static str, since: i64, stale: i64, now: i64| {
            let changes = changes.clone();
            async move {
                changes
                    .claim_shadow(v.id, instance, since, stale, now)
                    .await
                    .unwrap()
            }
        };
        let (a, b, c) = tokio::join!(
            claim("a", 1_000, 0, 2_000),
            claim("b", 1_000, 0, 2_000),
            claim("c", 1_000, 0, 2_000)
        );
        assert_eq!(
            [a, b, c].iter().filter(|won| **won).count(),
            1,
            "{kind}: {a} {b} {c}"
        );
        let first = changes.shadow(v.id).await.unwrap().unwrap();
        assert_eq!(first.finished_ms, None, "{kind}");
        // Running, and not stale (started at 2,000; stale means before 1,500): nobody else.
        assert!(!claim("z", 1_000, 1_500, 3_000).await, "{kind}");
        // Left unfinished since before 2,500: taken over.
        assert!(claim("z", 1_000, 2_500, 40_000).await, "{kind}");
        assert_eq!(
            changes.shadow(v.id).await.unwrap().unwrap().by_instance,
            "z",
            "{kind}"
        );
        // Nothing to override while it runs, nor once it found no regression.
        let early = changes.override_shadow(v.id, "ops", "why", 40_500).await;
        assert!(matches!(early, Err(EngineError::Conflict(_))), "{kind}");
        changes
            .finish_shadow(v.id, 3, 0, "{}", 41_000)
            .await
            .unwrap();
        let clean = changes.override_shadow(v.id, "ops", "why", 41_500).await;
        assert!(matches!(clean, Err(EngineError::Conflict(_))), "{kind}");
        assert_eq!(changes.shadow_blocks(v.id).await.unwrap(), None, "{kind}");
        // Finished for this proposal: not run again, however old.
        assert!(!claim("c", 1_000, 50_000, 60_000).await, "{kind}");
        // Proposed again after it (since 45,000): run again, from nothing.
        assert!(claim("c", 45_000, 0, 61_000).await, "{kind}");
        let rerun = changes.shadow(v.id).await.unwrap().unwrap();
        assert_eq!(
            (rerun.by_instance.as_str(), rerun.finished_ms, rerun.sagas),
            ("c", None, 0),
            "{kind}"
        );
        changes
            .finish_shadow(v.id, 2, 1, "{}", 62_000)
            .await
            .unwrap();
        let blocks = changes.shadow_blocks(v.id).await.unwrap().unwrap();
        assert!(
            blocks.contains("1 of 2 sagas ending worse"),
            "{kind}: {blocks}"
        );
        let overridden = changes
            .override_shadow(v.id, "ops", "the fee is meant", 63_000)
            .await
            .unwrap();
        assert_eq!(
            overridden.overridden,
            Some(("ops".into(), "the fee is meant".into(), 63_000)),
            "{kind}"
        );
        assert_eq!(changes.shadow_blocks(v.id).await.unwrap(), None, "{kind}");
        // A new proposal's run clears the override with the rest.
        assert!(claim("a", 70_000, 0, 71_000).await, "{kind}");
        assert_eq!(
            changes.shadow(v.id).await.unwrap().unwrap().overridden,
            None,
            "{kind}"
        );
    }
}
