//! The solver's nonces shared through the database, on both databases: instances taking at once
//! never get one nonce twice; a claim ends when its transaction is logged; one whose holder
//! stopped first is handed out again (or found abandoned) after it expires; one given back too.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use baton_adapters::nonce::{NonceSource, Taken};
use baton_adapters::port::SignedTx;
use baton_engine::event::{SagaEvent, SagaId};
use baton_engine::{SagaLog, SharedNonces, with_pool};
use baton_planner::{ChainId, IntentId, StepId};

use crate::databases;

const CHAIN: ChainId = ChainId(1001);

async fn take(source: &SharedNonces, signer: Address, pending: u64) -> u64 {
    match source.take(CHAIN, signer, None).await.unwrap() {
        Taken::Nonce(n) => n,
        Taken::AskChain => match source.take(CHAIN, signer, Some(pending)).await.unwrap() {
            Taken::Nonce(n) => n,
            Taken::AskChain => panic!("asked for the chain's count twice"),
        },
    }
}

async fn claims(log: &SagaLog) -> Vec<i64> {
    with_pool!(log.db(), pool => {
        sqlx::query_scalar("SELECT nonce FROM nonce_claims ORDER BY nonce")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_taking_at_once_never_share_a_nonce() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        let signer = Address::repeat_byte(1);
        let ttl = Duration::from_secs(60);
        let a = Arc::new(SharedNonces::new(&log, "a", ttl));
        let b = Arc::new(SharedNonces::new(&log, "b", ttl));
        // The chain has seen 7 transactions of the key before any instance started.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let source = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move { take(&source, signer, 7).await }));
        }
        let mut taken = HashSet::new();
        for t in tasks {
            assert!(taken.insert(t.await.unwrap()), "a nonce handed out twice");
        }
        assert_eq!(taken, (7..47).collect::<HashSet<u64>>());
        // Another signer, or chain, has nonces of its own.
        assert_eq!(take(&a, Address::repeat_byte(2), 0).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_ends_with_its_logged_transaction_and_an_abandoned_one_is_handed_out_again() {
    for (db, _guard) in databases().await {
        let log = SagaLog::new(db.clone());
        let signer = Address::repeat_byte(1);
        let a = SharedNonces::new(&log, "a", Duration::from_millis(300));
        let b = SharedNonces::new(&log, "b", Duration::from_secs(60));
        assert_eq!(take(&a, signer, 3).await, 3);
        assert_eq!(take(&a, signer, 3).await, 4);
        assert_eq!(take(&b, signer, 3).await, 5, "4 is held by a");
        assert_eq!(claims(&log).await, vec![3, 4, 5]);

        // Nonce 3's transaction is logged: its claim ends in the same commit.
        let saga = SagaId(B256::repeat_byte(9));
        log.append(
            saga,
            SagaEvent::Started {
                intent: IntentId(saga.0),
                plan: B256::ZERO,
            },
        )
        .await
        .unwrap();
        log.append(
            saga,
            SagaEvent::TxSigned {
                step: StepId(0),
                comp: false,
                attempt: 0,
                tx: SignedTx {
                    chain: CHAIN,
                    from: signer,
                    nonce: 3,
                    hash: B256::repeat_byte(3),
                    raw: Bytes::new(),
                },
                context: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(claims(&log).await, vec![4, 5]);

        // `a` stops holding 4 without logging it: while its claim lasts nobody else gets it …
        assert!(b.abandoned(CHAIN, signer, 4).await.unwrap().is_none());
        assert!(!b.has_abandoned(CHAIN, signer).await.unwrap());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(b.has_abandoned(CHAIN, signer).await.unwrap());
        // … after, the next take asks the chain, and hands 4 out again (the chain has not used
        // it: its pending count is 4).
        assert_eq!(b.take(CHAIN, signer, None).await.unwrap(), Taken::AskChain);
        assert_eq!(
            b.take(CHAIN, signer, Some(4)).await.unwrap(),
            Taken::Nonce(4)
        );
        assert_eq!(take(&b, signer, 4).await, 6);

        // A nonce given back (the node refused its transaction) is found abandoned at once,
        // unless the chain used it meanwhile.
        assert!(!b.has_abandoned(CHAIN, signer).await.unwrap());
        b.release(CHAIN, signer, 6).await.unwrap();
        assert!(b.has_abandoned(CHAIN, signer).await.unwrap());
        assert_eq!(b.abandoned(CHAIN, signer, 6).await.unwrap(), Some(6));
        b.release(CHAIN, signer, 5).await.unwrap();
        assert_eq!(b.abandoned(CHAIN, signer, 6).await.unwrap(), None);
        assert_eq!(claims(&log).await, vec![4, 6], "5 was used on chain");
    }
}
