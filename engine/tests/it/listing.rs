//! The saga list's filters and the outcome series' rows on both databases: the writer keeps each
//! saga's route, latest outcome kind and decision time in the commits that admit and decide it.

use alloy::primitives::B256;
use baton_engine::event::{Outcome, SagaEvent, SagaId};
use baton_engine::log::{Admission, SagaFilter, SagaLog};
use baton_planner::IntentId;

use crate::databases;

fn saga(n: u8) -> SagaId {
    SagaId(B256::repeat_byte(n))
}

async fn admit(log: &SagaLog, n: u8, route: &str) {
    let now = baton_engine::now_ms();
    let admission = Admission {
        body: "{}".into(),
        route: route.into(),
        needs: Vec::new(),
        available: Default::default(),
        now_ms: now,
        expires_ms: now + 3_600_000,
        lease: None,
        submitter: None,
    };
    let started = SagaEvent::Started {
        intent: IntentId(B256::repeat_byte(n)),
        plan: B256::repeat_byte(0xee),
    };
    log.admit(saga(n), admission, started).await.unwrap();
}

async fn decide(log: &SagaLog, n: u8, outcome: Outcome) {
    log.append(saga(n), SagaEvent::Decided { outcome })
        .await
        .unwrap();
}

#[tokio::test]
async fn sagas_are_listed_by_outcome_route_chain_and_age() {
    for (db, _guard) in databases().await {
        let kind = db.kind();
        let log = SagaLog::new(db);
        let before = baton_engine::now_ms();
        admit(&log, 1, "10>20").await;
        admit(&log, 2, "10+30>20").await;
        admit(&log, 3, "20>10").await;
        admit(&log, 4, "").await;
        decide(&log, 1, Outcome::Fulfilled).await;
        decide(&log, 2, Outcome::Refunded).await;
        let failed = Outcome::Failed {
            reason: "stuck".into(),
            needs_operator: true,
        };
        decide(&log, 3, failed).await;
        // A failed saga retried and fulfilled counts as fulfilled, decided at the later time.
        decide(&log, 3, Outcome::Fulfilled).await;
        let ids = |filter: SagaFilter| {
            let log = log.clone();
            async move {
                let mut ids: Vec<u8> = log
                    .summaries(&filter)
                    .await
                    .unwrap()
                    .iter()
                    .map(|s| s.id.0[0])
                    .collect();
                ids.sort_unstable();
                ids
            }
        };
        let all = SagaFilter::default();
        assert_eq!(ids(all.clone()).await, [1, 2, 3, 4], "{kind}");
        let outcome = |o: &str| SagaFilter {
            outcome: Some(o.into()),
            ..SagaFilter::default()
        };
        assert_eq!(ids(outcome("fulfilled")).await, [1, 3], "{kind}");
        assert_eq!(ids(outcome("refunded")).await, [2], "{kind}");
        assert!(ids(outcome("failed")).await.is_empty(), "{kind}");
        let chain = |c: u64| SagaFilter {
            chain: Some(c),
            ..SagaFilter::default()
        };
        assert_eq!(ids(chain(10)).await, [1, 2, 3], "{kind}");
        assert_eq!(ids(chain(30)).await, [2], "{kind}");
        // A chain id is matched whole.
        assert!(ids(chain(1)).await.is_empty(), "{kind}");
        assert!(ids(chain(0)).await.is_empty(), "{kind}");
        let route = SagaFilter {
            route: Some("10>20".into()),
            ..SagaFilter::default()
        };
        assert_eq!(ids(route).await, [1], "{kind}");
        let young = SagaFilter {
            admitted_from_ms: Some(before),
            ..SagaFilter::default()
        };
        assert_eq!(ids(young).await.len(), 4, "{kind}");
        let old = SagaFilter {
            admitted_until_ms: Some(before - 1),
            ..SagaFilter::default()
        };
        assert!(ids(old).await.is_empty(), "{kind}");

        let summaries = log.summaries(&all).await.unwrap();
        let of = |n: u8| summaries.iter().find(|s| s.id == saga(n)).unwrap();
        assert_eq!(of(2).route.as_deref(), Some("10+30>20"), "{kind}");
        assert_eq!(of(4).route, None, "{kind}: an unknown route is not stored");
        assert_eq!(of(4).decided_ms, None, "{kind}");
        assert!(of(1).decided_ms.unwrap() >= of(1).created_ms, "{kind}");
        assert_eq!(of(3).outcome, Some(Outcome::Fulfilled), "{kind}");

        let decided = log.decided_since(before, 100).await.unwrap();
        let kinds: Vec<(&str, Option<&str>)> = decided
            .iter()
            .map(|d| (d.outcome.as_str(), d.route.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("fulfilled", Some("10>20")),
                ("refunded", Some("10+30>20")),
                ("fulfilled", Some("20>10")),
            ],
            "{kind}: each saga once, at its latest outcome, oldest decision first"
        );
        // What a guard counts: the outcomes of the sagas admitted since (saga 4 has none).
        assert_eq!(
            log.outcomes_admitted_since(before).await.unwrap(),
            [("fulfilled".to_owned(), 2), ("refunded".to_owned(), 1)],
            "{kind}"
        );
        assert!(
            log.outcomes_admitted_since(baton_engine::now_ms() + 1_000)
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
        assert!(
            log.decided_since(baton_engine::now_ms() + 1_000, 100)
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
    }
}
