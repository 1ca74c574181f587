//! The webhook outbox on both databases: written by the log's writer in the commit of each event
//! an endpoint of the submitting key subscribed to, claimed one message per endpoint and saga at a
//! time in the saga's order, retried, given up on (the endpoint failing) and enabled again.

use alloy::primitives::B256;
use baton_engine::event::{Outcome, SagaEvent, SagaId};
use baton_engine::log::{Admission, Attempt, Message, NewEndpoint, Next, SagaLog};
use baton_planner::{IntentId, StepId};

use crate::databases;

fn saga(n: u8) -> SagaId {
    SagaId(B256::repeat_byte(n))
}

fn admission(submitter: &str) -> Admission {
    let now = baton_engine::now_ms();
    Admission {
        body: "{}".into(),
        route: "1>2".into(),
        needs: Vec::new(),
        available: Default::default(),
        now_ms: now,
        expires_ms: now + 3_600_000,
        lease: None,
        submitter: Some(submitter.into()),
    }
}

fn started(n: u8) -> SagaEvent {
    SagaEvent::Started {
        intent: IntentId(B256::repeat_byte(n)),
        plan: B256::repeat_byte(0xee),
    }
}

fn endpoint(id: &str, key: &str, topics: &[&str]) -> NewEndpoint {
    NewEndpoint {
        id: id.into(),
        key_name: key.into(),
        url: format!("http://127.0.0.1:9/{id}"),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        description: String::new(),
        secret: "whsec_c2VjcmV0".into(),
        created_ms: baton_engine::now_ms(),
    }
}

fn tried(message: &Message, at_ms: i64, status: Option<u16>) -> Attempt {
    Attempt {
        message_id: message.id(),
        topic: message.topic.clone(),
        attempt: message.attempts + 1,
        at_ms,
        status,
        error: None,
        duration_ms: 3,
    }
}

/// The (endpoint, seq, topic) of what `claim` took.
fn took(messages: &[Message]) -> Vec<(String, u64, String)> {
    messages
        .iter()
        .map(|m| (m.endpoint_id.clone(), m.seq, m.topic.clone()))
        .collect()
}

#[tokio::test]
async fn the_outbox_is_written_with_the_events_and_delivered_in_each_sagas_order() {
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let log = SagaLog::new(db);
        assert!(
            log.add_webhook(
                &endpoint("wh_a", "dapp-a", &["intent.started", "intent.fulfilled"]),
                16
            )
            .await
            .unwrap()
        );
        let every: Vec<&str> = baton_engine::TOPICS.to_vec();
        assert!(
            log.add_webhook(&endpoint("wh_b", "dapp-b", &every), 16)
                .await
                .unwrap()
        );
        // A key holds at most as many endpoints as it may.
        assert!(
            !log.add_webhook(&endpoint("wh_c", "dapp-a", &every), 1)
                .await
                .unwrap()
        );

        // dapp-a's saga: only dapp-a's endpoint, only its topics, as soon as each append is back.
        log.admit(saga(6), admission("dapp-a"), started(6))
            .await
            .unwrap();
        let step_failed = SagaEvent::StepFailed {
            step: StepId(0),
            comp: false,
            reason: "reverted".into(),
            receipt: None,
            failure: None,
        };
        log.append(saga(6), step_failed).await.unwrap();
        log.append(
            saga(6),
            SagaEvent::Decided {
                outcome: Outcome::Fulfilled,
            },
        )
        .await
        .unwrap();
        let now = baton_engine::now_ms();
        // The saga's first message goes first; its next waits for it.
        let first = log.claim_webhooks(now, now + 10_000, 10).await.unwrap();
        assert_eq!(
            took(&first),
            [("wh_a".into(), 1, "intent.started".into())],
            "{kind}"
        );
        assert_eq!(first[0].id(), format!("msg_{:x}_1", saga(6).0));
        assert!(first[0].event.contains("\"started\""), "{kind}");
        // Claimed: nobody else takes it while the claim holds.
        assert!(
            log.claim_webhooks(now, now + 10_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
        log.webhook_attempted(
            &first[0],
            &tried(&first[0], now, Some(200)),
            Next::Delivered,
        )
        .await
        .unwrap();
        let next = log.claim_webhooks(now, now + 10_000, 10).await.unwrap();
        assert_eq!(
            took(&next),
            [("wh_a".into(), 3, "intent.fulfilled".into())],
            "{kind}"
        );

        // Retried later: not due before then.
        log.webhook_attempted(
            &next[0],
            &tried(&next[0], now + 1, Some(500)),
            Next::RetryAt(now + 5_000),
        )
        .await
        .unwrap();
        assert!(
            log.claim_webhooks(now + 4_999, now + 10_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
        let again = log
            .claim_webhooks(now + 5_000, now + 15_000, 10)
            .await
            .unwrap();
        assert_eq!(again[0].attempts, 1, "{kind}");
        // Given up on: the endpoint is failing and gets nothing until enabled again.
        log.webhook_attempted(
            &again[0],
            &tried(&again[0], now + 5_000, None),
            Next::GiveUp,
        )
        .await
        .unwrap();
        let a = log.webhook("wh_a").await.unwrap().unwrap();
        assert_eq!((a.failing_ms, a.pending), (Some(now + 5_000), 1), "{kind}");
        assert!(
            log.claim_webhooks(now + 60_000, now + 70_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
        assert!(log.enable_webhook("wh_a", now + 1).await.unwrap());
        let enabled = log.claim_webhooks(now + 1, now + 10_000, 10).await.unwrap();
        assert_eq!(
            (enabled.len(), enabled[0].attempts, enabled[0].first_ms),
            (1, 2, now + 1),
            "{kind}"
        );
        let attempts = log.webhook_attempts("wh_a", 10).await.unwrap();
        let statuses: Vec<Option<u16>> = attempts.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [None, Some(500), Some(200)],
            "newest first ({kind})"
        );

        // dapp-b's saga reaches dapp-b's endpoint, every topic; removing it removes its messages.
        log.admit(saga(7), admission("dapp-b"), started(7))
            .await
            .unwrap();
        let b = log.webhook("wh_b").await.unwrap().unwrap();
        assert_eq!(b.pending, 1, "{kind}");
        assert_eq!(log.webhooks(Some("dapp-b")).await.unwrap(), [b], "{kind}");
        assert_eq!(log.webhooks(None).await.unwrap().len(), 2, "{kind}");
        assert!(log.remove_webhook("wh_b").await.unwrap());
        assert!(!log.remove_webhook("wh_b").await.unwrap());
        assert!(log.webhook("wh_b").await.unwrap().is_none(), "{kind}");
        // A saga of a key without endpoints has no messages.
        log.admit(saga(8), admission("dapp-c"), started(8))
            .await
            .unwrap();
        let due = log
            .claim_webhooks(now + 100_000, now + 110_000, 10)
            .await
            .unwrap();
        assert!(
            due.iter().all(|m| m.saga == saga(6)),
            "{kind}: {:?}",
            took(&due)
        );
    }
}
