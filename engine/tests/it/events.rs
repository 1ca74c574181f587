//! The settler events the EVM adapters keep, in the saga log's database (both databases): stored
//! once however many instances read a range, read back by order in chain order, with a cursor
//! that only moves forward, and still there for a store opened again on the same database.

use alloy::primitives::{Address, B256, Bytes, Log, LogData};
use baton_adapters::evm::EventStore;
use baton_adapters::port::{BlockRef, EventAt};
use baton_engine::StoredEvents;

use crate::databases;

fn event(order: u8, block: u64, index: u64) -> (B256, u64, Log, EventAt) {
    let log = Log {
        address: Address::repeat_byte(0xde),
        data: LogData::new_unchecked(
            vec![B256::repeat_byte(1), B256::repeat_byte(order)],
            Bytes::from(block.to_be_bytes().to_vec()),
        ),
    };
    let at = EventAt {
        block: BlockRef {
            number: block,
            hash: B256::from(alloy::primitives::U256::from(block)),
        },
        tx: B256::with_last_byte(u8::try_from(index).unwrap()),
    };
    (B256::repeat_byte(order), index, log, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_settler_events_are_stored_once_and_survive_a_new_store() {
    for (db, _guard) in databases().await {
        let store = StoredEvents::new(&db);
        let source = "1001:0xorigin:0xdestination";
        assert_eq!(store.read_to(source).await.unwrap(), None);
        store
            .store(source, 1_000, vec![event(7, 40, 0), event(8, 40, 1)])
            .await
            .unwrap();
        // Another instance read the same range, and the next one.
        store
            .store(source, 1_000, vec![event(7, 40, 0), event(8, 40, 1)])
            .await
            .unwrap();
        store
            .store(source, 2_000, vec![event(7, 1_500, 3)])
            .await
            .unwrap();
        // A late writer of an old range does not move the cursor back.
        store.store(source, 900, Vec::new()).await.unwrap();

        let again = StoredEvents::new(&db);
        assert_eq!(again.read_to(source).await.unwrap(), Some(2_000));
        let of_7 = again.events(source, B256::repeat_byte(7)).await.unwrap();
        let expected: Vec<_> = [event(7, 40, 0), event(7, 1_500, 3)]
            .into_iter()
            .map(|(_, _, log, at)| (log, at))
            .collect();
        assert_eq!(of_7, expected);
        assert_eq!(
            again
                .events(source, B256::repeat_byte(8))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            again
                .events("1002:0xorigin:0xdestination", B256::repeat_byte(7))
                .await
                .unwrap()
                .is_empty(),
            "another chain's events are its own"
        );
    }
}
