//! The saga log on both databases: contiguous hash-chained sequences under concurrency, group
//! commit, durability across a reopen, and tampering found by `verify`.

use alloy::primitives::B256;
use baton_engine::event::{Outcome, SagaEvent, SagaId};
use baton_engine::log::SagaLog;
use baton_engine::{Db, with_pool};
use baton_planner::{IntentId, StepId};

use crate::{databases, databases_at, sqlite_file};

fn saga(n: u8) -> SagaId {
    SagaId(B256::repeat_byte(n))
}

fn started(n: u8) -> SagaEvent {
    SagaEvent::Started {
        intent: IntentId(B256::repeat_byte(n)),
        plan: B256::repeat_byte(0xee),
    }
}

fn failed(step: u32) -> SagaEvent {
    SagaEvent::StepFailed {
        step: StepId(step),
        comp: false,
        reason: format!("step {step} reverted"),
        receipt: None,
        failure: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_form_one_contiguous_chain_per_saga_in_shared_commits() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        let mut tasks = Vec::new();
        for s in 1..=8u8 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = vec![log.append(saga(s), started(s)).await.unwrap().seq];
                for k in 0..24 {
                    seqs.push(log.append(saga(s), failed(k)).await.unwrap().seq);
                }
                seqs
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), (1..=25).collect::<Vec<u64>>());
        }
        let events = log.events(saga(3)).await.unwrap();
        assert_eq!(events.len(), 25);
        assert_eq!(events[0].event, started(3));
        assert_eq!(events[0].prev_hash, B256::ZERO);
        for pair in events.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash, "{}", db.kind());
        }
        let v = log.verify(None).await.unwrap();
        assert_eq!(
            (v.sagas, v.events, v.broken),
            (8, 200, None),
            "{}",
            db.kind()
        );
        let stats = log.stats();
        let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(stats.events.load(std::sync::atomic::Ordering::Relaxed), 200);
        assert!(
            commits < 200,
            "eight sagas at once share commits: {commits} for 200 events"
        );
    }
}

#[tokio::test]
async fn the_log_survives_a_reopen_and_continues_the_chain() {
    let (url, _file) = sqlite_file();
    let first = {
        let log = SagaLog::new(Db::connect(&url).await.unwrap());
        log.append(saga(1), started(1)).await.unwrap();
        log.append(saga(1), failed(0)).await.unwrap()
    };
    let log = SagaLog::new(Db::connect(&url).await.unwrap());
    let next = log
        .append(
            saga(1),
            SagaEvent::Decided {
                outcome: Outcome::Refunded,
            },
        )
        .await
        .unwrap();
    assert_eq!(next.seq, first.seq + 1);
    let events = log.events(saga(1)).await.unwrap();
    assert_eq!(events[2].prev_hash, first.hash);
    assert_eq!(log.verify(Some(saga(1))).await.unwrap().broken, None);
}

async fn exec(db: &Db, sql: &'static str, saga: SagaId, seq: i64) {
    with_pool!(db, pool => {
        sqlx::query(sql)
            .bind(saga.0.to_string())
            .bind(seq)
            .execute(pool)
            .await
            .unwrap();
    });
}

#[tokio::test]
async fn verify_names_the_first_broken_link() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        for s in [1u8, 2, 3] {
            log.append(saga(s), started(s)).await.unwrap();
            for k in 0..4 {
                log.append(saga(s), failed(k)).await.unwrap();
            }
        }
        assert_eq!(log.verify(None).await.unwrap().broken, None);

        // An edited payload: its own hash no longer matches.
        exec(
            &db,
            "UPDATE saga_events SET payload = replace(payload, 'reverted', 'succeeded') \
             WHERE saga_num = (SELECT num FROM sagas WHERE id = $1) AND seq = $2",
            saga(2),
            3,
        )
        .await;
        let broken = log.verify(None).await.unwrap().broken.unwrap();
        assert_eq!((broken.saga, broken.seq), (saga(2), 3), "{}", db.kind());
        assert!(broken.reason.contains("hash"), "{}", broken.reason);
        assert!(log.verify(Some(saga(1))).await.unwrap().broken.is_none());

        // A removed middle event, and a removed tail.
        exec(
            &db,
            "DELETE FROM saga_events WHERE saga_num = (SELECT num FROM sagas WHERE id = $1) AND seq = $2",
            saga(1),
            2,
        )
        .await;
        let broken = log.verify(Some(saga(1))).await.unwrap().broken.unwrap();
        assert_eq!(broken.seq, 2);
        exec(
            &db,
            "DELETE FROM saga_events WHERE saga_num = (SELECT num FROM sagas WHERE id = $1) AND seq = $2",
            saga(3),
            5,
        )
        .await;
        let broken = log.verify(Some(saga(3))).await.unwrap().broken.unwrap();
        assert_eq!(broken.seq, 5);
        assert!(broken.reason.contains("removed"), "{}", broken.reason);
    }
}

#[tokio::test]
async fn the_saga_state_column_moves_forward_only() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        let state = || async {
            let s: String = with_pool!(&db, pool => {
                sqlx::query_scalar("SELECT state FROM sagas WHERE id = $1")
                    .bind(saga(9).0.to_string())
                    .fetch_one(pool)
                    .await
                    .unwrap()
            });
            s
        };
        log.append(saga(9), started(9)).await.unwrap();
        assert_eq!(state().await, "running");
        log.append(
            saga(9),
            SagaEvent::Decided {
                outcome: Outcome::Fulfilled,
            },
        )
        .await
        .unwrap();
        // A later step (the settle) does not make a decided saga `running` again.
        log.append(saga(9), failed(3)).await.unwrap();
        assert_eq!(state().await, "decided", "{}", db.kind());
        log.append(saga(9), SagaEvent::Completed).await.unwrap();
        assert_eq!(state().await, "completed");
    }
}

#[test]
fn events_with_their_replay_context_and_receipts_round_trip_through_json() {
    use alloy::primitives::{Address, Bytes, Log, LogData, U256};
    use baton_adapters::port::{BlockRef, SignedTx};
    use baton_engine::event::{Read, Receipt, TxContext};
    use baton_planner::ChainId;
    let block = BlockRef {
        number: 7,
        hash: B256::repeat_byte(7),
    };
    let events = [
        SagaEvent::TxSigned {
            step: StepId(1),
            comp: false,
            attempt: 0,
            tx: SignedTx {
                chain: ChainId(1001),
                from: Address::repeat_byte(1),
                nonce: 3,
                hash: B256::repeat_byte(2),
                raw: Bytes::from(vec![1, 2, 3]),
            },
            context: Some(TxContext {
                head: block,
                base_fee: U256::from(u128::MAX),
                reads: vec![
                    Read::Reserves {
                        pool: Address::repeat_byte(3),
                        reserve0: U256::MAX,
                        reserve1: U256::from(1),
                    },
                    Read::Balance {
                        token: Address::repeat_byte(4),
                        owner: Address::repeat_byte(5),
                        amount: U256::from(9),
                    },
                ],
            }),
        },
        SagaEvent::StepFailed {
            step: StepId(1),
            comp: false,
            reason: "reverted".into(),
            receipt: Some(Receipt {
                block,
                success: false,
                gas_used: 21_000,
                revert_reason: Some("Pool: output below minOut".into()),
                logs: vec![Log {
                    address: Address::repeat_byte(6),
                    data: LogData::new_unchecked(vec![B256::repeat_byte(8)], Bytes::from(vec![9])),
                }],
            }),
            failure: Some(baton_engine::event::FailureKind::Reverted),
        },
    ];
    for event in events {
        let text = serde_json::to_string(&event).unwrap();
        let back: SagaEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event, "{text}");
    }
}

type SagaRow = (String, String, Option<String>, i64, String, i64, i64);
type EventRow = (String, i64, String, String, String, String, i64);
type StepRow = (String, i64, String, Option<String>, i64);

/// The sagas, events and steps of `db` (at migration 3 or later), events and steps by saga id.
async fn rows_by_id(db: &Db) -> (Vec<SagaRow>, Vec<EventRow>, Vec<StepRow>) {
    with_pool!(db, pool => {
        let sagas = sqlx::query_as(
            "SELECT id, state, outcome, last_seq, last_hash, created_ms, updated_ms FROM sagas \
             ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let events = sqlx::query_as(
            "SELECT s.id, e.seq, e.kind, e.payload, e.prev_hash, e.hash, e.at_ms \
             FROM saga_events e JOIN sagas s ON s.num = e.saga_num ORDER BY s.id, e.seq",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let steps = sqlx::query_as(
            "SELECT s.id, t.step, t.state, t.tx_hash, t.updated_ms \
             FROM steps t JOIN sagas s ON s.num = t.saga_num ORDER BY s.id, t.step",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        (sagas, events, steps)
    })
}

/// A log written before sagas had numbers (events and steps keyed by the saga's id) keeps every
/// event and step through migration 3, verifies, numbers its sagas in admission order and goes on.
#[tokio::test]
async fn migrating_to_saga_numbers_keeps_every_event_and_step() {
    let new = databases().await;
    let old = databases_at(2).await;
    assert_eq!(new.len(), old.len());
    for ((db, _g), (old, _h)) in new.into_iter().zip(old) {
        let log = SagaLog::new(db.clone());
        for s in [3u8, 1, 2] {
            log.append(saga(s), started(s)).await.unwrap();
            log.append(saga(s), failed(0)).await.unwrap();
            log.append(saga(s), failed(s.into())).await.unwrap();
        }
        let before = rows_by_id(&db).await;
        assert_eq!((before.0.len(), before.1.len(), before.2.len()), (3, 9, 6));
        // The same rows, written the way the log kept them before migration 3.
        let (sagas, events, steps) = &before;
        with_pool!(&old, pool => {
            for (id, state, outcome, last_seq, last_hash, created, updated) in sagas {
                sqlx::query(
                    "INSERT INTO sagas (id, state, outcome, last_seq, last_hash, created_ms, \
                     updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id).bind(state).bind(outcome).bind(last_seq).bind(last_hash)
                .bind(created).bind(updated)
                .execute(pool).await.unwrap();
            }
            for (id, seq, kind, payload, prev, hash, at) in events {
                sqlx::query(
                    "INSERT INTO saga_events (saga_id, seq, kind, payload, prev_hash, hash, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id).bind(seq).bind(kind).bind(payload).bind(prev).bind(hash).bind(at)
                .execute(pool).await.unwrap();
            }
            for (id, step, state, tx, updated) in steps {
                sqlx::query(
                    "INSERT INTO steps (saga_id, step, state, tx_hash, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id).bind(step).bind(state).bind(tx).bind(updated)
                .execute(pool).await.unwrap();
            }
        });
        old.migrate().await.unwrap();
        assert_eq!(rows_by_id(&old).await, before, "{}", old.kind());

        let (by_num, by_admission): (Vec<String>, Vec<String>) = with_pool!(&old, pool => (
            sqlx::query_scalar("SELECT id FROM sagas ORDER BY num").fetch_all(pool).await.unwrap(),
            sqlx::query_scalar("SELECT id FROM sagas ORDER BY created_ms, id")
                .fetch_all(pool).await.unwrap(),
        ));
        assert_eq!(by_num, by_admission);

        let migrated = SagaLog::new(old.clone());
        let v = migrated.verify(None).await.unwrap();
        assert_eq!(
            (v.sagas, v.events, v.broken),
            (3, 9, None),
            "{}",
            old.kind()
        );
        for s in [1u8, 2, 3] {
            assert_eq!(
                migrated.events(saga(s)).await.unwrap(),
                log.events(saga(s)).await.unwrap()
            );
        }
        // The chain goes on, and a new saga takes the next number.
        let next = migrated.append(saga(2), failed(7)).await.unwrap();
        assert_eq!(next.seq, 4);
        migrated.append(saga(9), started(9)).await.unwrap();
        let num: i64 = with_pool!(&old, pool => {
            sqlx::query_scalar("SELECT num FROM sagas WHERE id = $1")
                .bind(saga(9).to_string())
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(num, 4);
        let v = migrated.verify(None).await.unwrap();
        assert_eq!((v.sagas, v.events, v.broken), (4, 11, None));
    }
}

#[tokio::test]
async fn an_event_for_a_saga_the_log_never_admitted_is_refused_unwritten() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        // What follows an admission that did not commit: refused, nothing stored.
        match log.append(saga(5), failed(0)).await {
            Err(baton_engine::EngineError::NotAdmitted) => {}
            other => panic!("{}: {other:?}", db.kind()),
        }
        assert!(log.events(saga(5)).await.unwrap().is_empty());
        assert_eq!(log.verify(None).await.unwrap().sagas, 0, "{}", db.kind());
        // A saga's first event starts its log; what follows it is written.
        log.append(saga(5), started(5)).await.unwrap();
        assert_eq!(log.append(saga(5), failed(0)).await.unwrap().seq, 2);
    }
}

/// An admission that asks for `need` of a token the solver holds `held` of.
fn admission(need: u64, held: u64) -> baton_engine::log::Admission {
    use alloy::primitives::{Address, U256};
    use baton_planner::{Asset, ChainId, TokenAddress};
    let usdc = Asset::new(ChainId(1), TokenAddress(Address::repeat_byte(0x11)));
    let now = baton_engine::now_ms();
    baton_engine::log::Admission {
        body: "{}".into(),
        route: "1>2".into(),
        needs: vec![(usdc, U256::from(need))],
        available: [(usdc, U256::from(held))].into(),
        now_ms: now,
        expires_ms: now + 3_600_000,
        lease: None,
        submitter: None,
    }
}

#[tokio::test]
async fn an_admission_is_known_before_its_commit_and_what_follows_it_lands_after() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        let mut admitted = admission(60, 100);
        admitted.submitter = Some("dapp-a".into());
        let (decided, durable) = log
            .admit_early(saga(6), admitted, started(6))
            .await
            .unwrap();
        let early = decided.await.expect("admitted");
        // Handed over before the admission is known durable: written after it.
        let next = log.send(saga(6), failed(0), None).await.unwrap();
        assert_eq!(durable.await.unwrap().unwrap(), early, "{}", db.kind());
        assert_eq!(next.await.unwrap().unwrap().seq, 2, "{}", db.kind());
        let kinds: Vec<&str> = log
            .events(saga(6))
            .await
            .unwrap()
            .iter()
            .map(|e| e.event.kind())
            .collect();
        assert_eq!(kinds, ["started", "step_failed"], "{}", db.kind());

        // Refused (the 60 reserved leave 40 of 100): never announced as decided, and the answer
        // says why; nothing of the saga is stored, so what would follow it is refused too.
        let (decided, durable) = log
            .admit_early(saga(7), admission(50, 100), started(7))
            .await
            .unwrap();
        assert!(decided.await.is_err(), "{}", db.kind());
        match durable.await.unwrap() {
            Err(baton_engine::EngineError::Inventory(_)) => {}
            other => panic!("{}: {other:?}", db.kind()),
        }
        assert!(matches!(
            log.append(saga(7), failed(0)).await,
            Err(baton_engine::EngineError::NotAdmitted)
        ));
        // The admitted saga's submitter came with its commit; the refused one has none, and a
        // later submitter does not replace the first.
        assert_eq!(
            log.submitter(saga(6)).await.unwrap().as_deref(),
            Some("dapp-a"),
            "{}",
            db.kind()
        );
        assert_eq!(log.submitter(saga(7)).await.unwrap(), None, "{}", db.kind());
        log.record_submitter(saga(6), "dapp-b", 0).await.unwrap();
        assert_eq!(
            log.submitter(saga(6)).await.unwrap().as_deref(),
            Some("dapp-a"),
            "{}",
            db.kind()
        );
    }
}

#[tokio::test]
async fn the_sqlite_log_is_checkpointed_beside_the_writer() {
    let (url, file) = sqlite_file();
    let log = SagaLog::new(Db::connect(&url).await.unwrap());
    let size = || std::fs::metadata(&file.0).map_or(0, |m| m.len());
    let before = size();
    for s in 1..=20u8 {
        log.append(saga(s), started(s)).await.unwrap();
        for k in 0..4 {
            log.append(saga(s), failed(k)).await.unwrap();
        }
    }
    // Far fewer pages than any automatic checkpoint waits for: only the log's own checkpointer
    // copies them from the WAL into the database file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file is still {before} bytes: nothing was checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(log.verify(None).await.unwrap().events, 100);
}

#[tokio::test]
async fn migrating_intents_to_saga_numbers_keeps_every_input() {
    for (db, _guard) in databases_at(3).await {
        // Two admitted sagas, written the way the log kept them before migration 4.
        with_pool!(&db, pool => {
            for (n, num) in [(4u8, 2i64), (8, 1)] {
                sqlx::query(
                    "INSERT INTO sagas (id, num, state, last_seq, last_hash, created_ms, \
                     updated_ms) VALUES ($1, $2, 'running', 0, $3, $4, $4)",
                )
                .bind(saga(n).to_string()).bind(num).bind(B256::ZERO.to_string()).bind(i64::from(n))
                .execute(pool).await.unwrap();
                sqlx::query("INSERT INTO intents (id, body, created_ms) VALUES ($1, $2, $3)")
                    .bind(saga(n).to_string()).bind(format!("{{\"n\":{n}}}")).bind(i64::from(n))
                    .execute(pool).await.unwrap();
            }
        });
        db.migrate().await.unwrap();
        let log = SagaLog::new(db.clone());
        for n in [4u8, 8] {
            assert_eq!(
                log.input(saga(n)).await.unwrap(),
                Some(format!("{{\"n\":{n}}}")),
                "{}",
                db.kind()
            );
        }
        let unfinished = log.unfinished_with_inputs("anyone", 0).await.unwrap();
        let bodies: Vec<(SagaId, &str)> =
            unfinished.iter().map(|u| (u.id, u.body.as_str())).collect();
        assert_eq!(bodies, [(saga(4), "{\"n\":4}"), (saga(8), "{\"n\":8}")]);
        // A new admission stores its input under the next number.
        log.admit(saga(6), admission(1, 1), started(6))
            .await
            .unwrap();
        assert_eq!(log.input(saga(6)).await.unwrap().as_deref(), Some("{}"));
        let num: i64 = with_pool!(&db, pool => {
            sqlx::query_scalar("SELECT saga_num FROM intents WHERE id = $1")
                .bind(saga(6).to_string())
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(num, 3, "{}", db.kind());
    }
}
