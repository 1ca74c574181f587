//! `baton audit verify`: an intact saga log passes; an edited one names the broken link.

use std::process::{Command, Output};

use alloy::primitives::B256;
use baton_engine::event::SagaEvent;
use baton_engine::{Db, SagaId, SagaLog, with_pool};
use baton_planner::{IntentId, StepId};

fn audit(database: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["audit", "verify", "--database", database])
        .args(extra)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_passes_an_intact_log_and_names_the_first_altered_event() {
    let path = std::env::temp_dir().join(format!("baton-audit-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let saga = SagaId(B256::repeat_byte(7));
    let db = Db::connect(&url).await.unwrap();
    let log = SagaLog::new(db.clone());
    log.append(
        saga,
        SagaEvent::Started {
            intent: IntentId(saga.0),
            plan: B256::ZERO,
        },
    )
    .await
    .unwrap();
    for step in 0..3 {
        log.append(
            saga,
            SagaEvent::StepFinal {
                step: StepId(step),
                comp: false,
                block: None,
                tx: None,
                receipt: None,
            },
        )
        .await
        .unwrap();
    }

    let out = audit(&url, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("1 saga(s), 4 event(s)"), "{stdout}");

    with_pool!(&db, pool => {
        sqlx::query("UPDATE saga_events SET at_ms = at_ms + 1 WHERE seq = 2")
            .execute(pool)
            .await
            .unwrap();
    });
    let out = audit(&url, &["--saga", &saga.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("saga {saga} event 2")), "{stdout}");

    let out = audit(&url, &["--saga", "not-an-id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a saga id"));

    let out = audit("sqlite:///no/such/baton.db", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no saga log at /no/such/baton.db"));

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
