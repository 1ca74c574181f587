//! The writer's decision for one batch, a pure function of the batch and of what the writer read
//! for it: which appends are written (and where each lands in its saga's chain), which are refused
//! and why, which inventory is reserved and released, and the rows that record it all.

use std::collections::{BTreeSet, HashMap};

use alloy::primitives::{Address, B256};
use baton_planner::Asset;

use super::super::{Append, Appended, chain_i64, db_int, event_hash, hex, parse_hash, state_after};
use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};
use crate::log::reserve::Ledger;

/// A saga as the writer knows it: its number in the log (the key of its events and steps) and its
/// last event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) num: i64,
    pub(crate) seq: u64,
    pub(crate) hash: B256,
}

/// A saga's stored number, head and lease fence, as the batch read them.
#[derive(Clone, Debug)]
pub(crate) struct StoredSaga {
    pub(crate) num: i64,
    pub(crate) seq: i64,
    pub(crate) hash: String,
    pub(crate) fence: i64,
}

/// What the writer read for a batch, in its transaction.
#[derive(Default)]
pub(crate) struct Read {
    /// The stored sagas the batch touches that the writer does not know (or must check the fence
    /// of), by id.
    pub(crate) stored: HashMap<String, StoredSaga>,
    /// The highest number given so far (a saga new to the log takes the next).
    pub(crate) last_num: i64,
    /// The unexpired reservations of the assets the batch's admissions need.
    pub(crate) ledger: Ledger,
}

/// The rows of the `saga_events` table a batch inserts.
pub(crate) struct EventRow {
    pub(crate) saga_num: i64,
    pub(crate) seq: i64,
    pub(crate) kind: &'static str,
    /// The webhook topic that reports it (the outbox rows of its subscribers are written with it).
    pub(crate) topic: &'static str,
    pub(crate) payload: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
    pub(crate) at_ms: i64,
}

/// A `sagas` row after the batch.
pub(crate) struct SagaRow {
    pub(crate) id: String,
    /// Its number: given when the batch creates the row, never changed after.
    pub(crate) num: i64,
    /// The state the batch moves the saga to, if it does.
    pub(crate) state: Option<&'static str>,
    pub(crate) outcome: Option<String>,
    /// The kind of the latest outcome decided in the batch and when (`outcome_kind`, `decided_ms`).
    pub(crate) decided: Option<(&'static str, i64)>,
    pub(crate) last_seq: i64,
    pub(crate) last_hash: String,
    pub(crate) at_ms: i64,
    /// For a saga admitted in this batch: its first lease (owner, until), fence 1.
    pub(crate) lease: Option<(String, i64)>,
}

/// A `steps` row after the batch.
pub(crate) struct StepRow {
    pub(crate) saga_num: i64,
    pub(crate) step: u32,
    pub(crate) state: &'static str,
    pub(crate) tx_hash: Option<String>,
    pub(crate) at_ms: i64,
}

/// A reservation an admission takes.
pub(crate) struct ReservationRow {
    pub(crate) saga: String,
    pub(crate) chain: i64,
    pub(crate) token: String,
    pub(crate) amount: String,
    pub(crate) expires_ms: i64,
}

/// An admitted saga's stored input.
pub(crate) struct IntentRow {
    pub(crate) num: i64,
    pub(crate) id: String,
    pub(crate) body: String,
    /// Its route (`31337>31338`), unless unknown.
    pub(crate) route: Option<String>,
    pub(crate) created_ms: i64,
    /// The API key's name that submitted it.
    pub(crate) submitter: Option<String>,
}

/// Everything a batch writes.
#[derive(Default)]
pub(crate) struct Rows {
    pub(crate) events: Vec<EventRow>,
    /// One per saga: its state after the batch (the latest outcome decided in it kept).
    pub(crate) sagas: HashMap<SagaId, SagaRow>,
    /// One per step touched: its latest state.
    pub(crate) steps: HashMap<(SagaId, u32), StepRow>,
    /// The next nonce per (chain, signer) after the batch's signed transactions.
    pub(crate) nonces: HashMap<(u64, Address), i64>,
    /// The (chain, signer, nonce) of each signed transaction: its nonce claim ends with the batch.
    pub(crate) signed: Vec<(u64, Address, u64)>,
    pub(crate) reservations: HashMap<(SagaId, Asset), ReservationRow>,
    pub(crate) intents: Vec<IntentRow>,
    /// Sagas whose reservations the batch releases (they completed).
    pub(crate) released: Vec<String>,
}

/// A batch's decision.
pub(crate) struct Decision {
    /// Each append's result, in the batch's order.
    pub(crate) results: Vec<Result<Appended>>,
    /// What to write.
    pub(crate) rows: Rows,
    /// The heads the batch moves, once it commits.
    pub(crate) heads: HashMap<SagaId, Head>,
}

/// What the batch's admissions need to see of the stored reservations: those unexpired at the
/// earliest admission's time, of these assets (and their tokens, to select by); `None` without
/// admissions.
pub(crate) fn needed_reservations(batch: &[Append]) -> Option<(i64, BTreeSet<Asset>, Vec<String>)> {
    let admissions = batch.iter().filter_map(|a| a.admission.as_ref());
    let oldest = admissions.clone().map(|a| a.now_ms).min()?;
    let needed: BTreeSet<Asset> = admissions
        .flat_map(|a| a.needs.iter().map(|(asset, _)| *asset))
        .collect();
    let tokens: BTreeSet<String> = needed.iter().map(|a| a.token.0.to_string()).collect();
    Some((oldest, needed, tokens.into_iter().collect()))
}

/// The `steps` row an event sets: step, state, transaction.
fn step_state(event: &SagaEvent) -> Option<(u32, &'static str, Option<B256>)> {
    Some(match event {
        SagaEvent::TxSigned { step, comp, tx, .. } => (
            step.0,
            if *comp {
                "compensation_signed"
            } else {
                "signed"
            },
            Some(tx.hash),
        ),
        SagaEvent::StepFinal { step, comp, tx, .. } => {
            (step.0, if *comp { "compensated" } else { "done" }, *tx)
        }
        SagaEvent::StepFailed { step, comp, .. } => (
            step.0,
            if *comp {
                "compensation_failed"
            } else {
                "failed"
            },
            None,
        ),
        _ => return None,
    })
}

/// Decides `batch` against the heads the writer knows (`heads`, as of its last commit) and what it
/// read (`read`); `clock` stamps each written event. In the batch's order, an append is refused:
/// - fenced, when the saga's stored fence moved on ([`EngineError::LeaseLost`]);
/// - for a saga the log does not have, unless it is a first `Started`
///   ([`EngineError::NotAdmitted`]);
/// - as an admission of a saga that has events ([`EngineError::AlreadyAdmitted`]);
/// - as an admission whose inventory the unexpired reservations, this batch's included, leave
///   too little of ([`EngineError::Inventory`]);
///
/// and otherwise written after the saga's latest event (this batch's included), a saga new to
/// the log taking the next number.
pub(crate) fn decide(
    batch: &[Append],
    heads: &HashMap<SagaId, Head>,
    mut read: Read,
    mut clock: impl FnMut() -> i64,
) -> Result<Decision> {
    let mut tentative: HashMap<SagaId, Head> = HashMap::new();
    let mut results = Vec::with_capacity(batch.len());
    let mut rows = Rows {
        events: Vec::with_capacity(batch.len()),
        ..Rows::default()
    };
    for append in batch {
        let saga = append.saga;
        let row = read.stored.get(&hex(saga.0));
        if let Some(fence) = append.fence
            && row.map(|r| r.fence) != Some(fence)
        {
            results.push(Err(EngineError::LeaseLost));
            continue;
        }
        let head = match tentative.get(&saga).or_else(|| heads.get(&saga)) {
            Some(h) => *h,
            None => match row {
                Some(r) => Head {
                    num: r.num,
                    seq: u64::try_from(r.seq).map_err(|_| EngineError::Corrupt("seq".into()))?,
                    hash: parse_hash(&r.hash)?,
                },
                // Only a saga's first event starts its log: anything else for a saga the log does
                // not have followed an admission that did not commit.
                None if append.admission.is_none()
                    && !matches!(append.event, SagaEvent::Started { .. }) =>
                {
                    results.push(Err(EngineError::NotAdmitted));
                    continue;
                }
                // New to the log: the next number (a refused admission leaves a gap).
                None => {
                    read.last_num += 1;
                    Head {
                        num: read.last_num,
                        seq: 0,
                        hash: B256::ZERO,
                    }
                }
            },
        };
        if append.admission.is_some() && head.seq > 0 {
            results.push(Err(EngineError::AlreadyAdmitted));
            continue;
        }
        if let Some(admission) = &append.admission {
            if let Err(e) = read.ledger.take(
                saga,
                &admission.needs,
                &admission.available,
                admission.now_ms,
                admission.expires_ms,
            ) {
                results.push(Err(e));
                continue;
            }
            for (asset, need) in &admission.needs {
                rows.reservations.insert(
                    (saga, *asset),
                    ReservationRow {
                        saga: hex(saga.0),
                        chain: chain_i64(asset)?,
                        token: asset.token.0.to_string(),
                        amount: need.to_string(),
                        expires_ms: admission.expires_ms,
                    },
                );
            }
            rows.intents.push(IntentRow {
                num: head.num,
                id: hex(saga.0),
                body: admission.body.clone(),
                route: Some(admission.route.clone()).filter(|r| !r.is_empty()),
                created_ms: admission.now_ms,
                submitter: admission.submitter.clone(),
            });
        }
        if append.event == SagaEvent::Completed {
            // Released in this commit (after the batch's new reservations are written).
            read.ledger.release(saga);
            rows.released.push(hex(saga.0));
        }
        let seq = head.seq + 1;
        let at_ms = clock();
        let hash = event_hash(head.hash, saga, seq, at_ms, &append.payload);
        let seq_i = i64::try_from(seq).map_err(|_| EngineError::Corrupt("seq".into()))?;
        rows.events.push(EventRow {
            saga_num: head.num,
            seq: seq_i,
            kind: append.event.kind(),
            topic: append.event.topic(),
            payload: append.payload.clone(),
            prev_hash: hex(head.hash),
            hash: hex(hash),
            at_ms,
        });
        let (outcome, decided) = match &append.event {
            SagaEvent::Decided { outcome } => (
                serde_json::to_string(outcome).ok(),
                Some((outcome.kind(), at_ms)),
            ),
            _ => (None, None),
        };
        let row = rows.sagas.entry(saga).or_insert_with(|| SagaRow {
            id: hex(saga.0),
            num: head.num,
            state: None,
            outcome: None,
            decided: None,
            last_seq: 0,
            last_hash: String::new(),
            at_ms,
            lease: None,
        });
        if let Some(admission) = &append.admission {
            row.lease = admission.lease.clone();
        }
        row.state = state_after(&append.event).or(row.state);
        row.outcome = outcome.or(row.outcome.take());
        row.decided = decided.or(row.decided);
        row.last_seq = seq_i;
        row.last_hash = hex(hash);
        row.at_ms = at_ms;
        if let Some((step, state, tx)) = step_state(&append.event) {
            rows.steps.insert(
                (saga, step),
                StepRow {
                    saga_num: head.num,
                    step,
                    state,
                    tx_hash: tx.map(hex),
                    at_ms,
                },
            );
        }
        if let SagaEvent::TxSigned { tx, .. } = &append.event {
            let next = db_int(tx.nonce + 1);
            let entry = rows.nonces.entry((tx.chain.0, tx.from)).or_insert(next);
            *entry = (*entry).max(next);
            rows.signed.push((tx.chain.0, tx.from, tx.nonce));
        }
        tentative.insert(
            saga,
            Head {
                num: head.num,
                seq,
                hash,
            },
        );
        results.push(Ok(Appended { seq, hash }));
    }
    Ok(Decision {
        results,
        rows,
        heads: tentative,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use alloy::primitives::{Address, U256};
    use baton_planner::{Asset, ChainId, TokenAddress};

    use super::*;
    use crate::event::Outcome;
    use crate::log::Admission;

    fn saga(n: u8) -> SagaId {
        SagaId(B256::repeat_byte(n))
    }

    fn usdc() -> Asset {
        Asset::new(ChainId(1001), TokenAddress(Address::repeat_byte(0xaa)))
    }

    fn append(saga: SagaId, event: SagaEvent) -> Append {
        Append {
            saga,
            payload: serde_json::to_string(&event).unwrap(),
            event,
            admission: None,
            fence: None,
            decided: None,
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    fn started(n: u8) -> SagaEvent {
        SagaEvent::Started {
            intent: baton_planner::IntentId(B256::repeat_byte(n)),
            plan: B256::ZERO,
        }
    }

    /// The admission of saga `n` needing `need` of USDC, of which the solver holds `have`.
    fn admission(n: u8, need: u64, have: u64) -> Append {
        let mut a = append(saga(n), started(n));
        a.admission = Some(Admission {
            body: format!("input {n}"),
            route: "1>2".into(),
            needs: vec![(usdc(), U256::from(need))],
            available: BTreeMap::from([(usdc(), U256::from(have))]),
            now_ms: 1_000,
            expires_ms: 9_000,
            lease: Some(("here".into(), 2_000)),
            submitter: None,
        });
        a
    }

    fn alert(n: u8) -> Append {
        append(
            saga(n),
            SagaEvent::Alert {
                reason: "look".into(),
            },
        )
    }

    fn clock() -> impl FnMut() -> i64 {
        let mut t = 100;
        move || {
            t += 1;
            t
        }
    }

    fn decide_fresh(batch: &[Append], last_num: i64) -> Decision {
        let read = Read {
            last_num,
            ..Read::default()
        };
        decide(batch, &HashMap::new(), read, clock()).unwrap()
    }

    #[test]
    fn a_new_saga_takes_the_next_number_and_its_events_chain_in_order() {
        let batch = [
            admission(1, 10, 100),
            alert(1),
            append(
                saga(1),
                SagaEvent::Decided {
                    outcome: Outcome::Fulfilled,
                },
            ),
            append(saga(1), SagaEvent::Completed),
        ];
        let d = decide_fresh(&batch, 41);
        let seqs: Vec<u64> = d.results.iter().map(|r| r.as_ref().unwrap().seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        let events = &d.rows.events;
        assert!(events.iter().all(|e| e.saga_num == 42));
        assert_eq!(events[0].prev_hash, hex(B256::ZERO));
        for pair in events.windows(2) {
            assert_eq!(
                pair[1].prev_hash, pair[0].hash,
                "each event names the one before"
            );
        }
        let row = &d.rows.sagas[&saga(1)];
        assert_eq!(
            (row.num, row.last_seq, row.state),
            (42, 4, Some("completed"))
        );
        assert!(row.outcome.as_deref().unwrap().contains("fulfilled"));
        assert_eq!(row.lease, Some(("here".into(), 2_000)));
        assert_eq!(d.rows.intents.len(), 1);
        assert_eq!(d.rows.intents[0].num, 42);
        assert_eq!(
            d.rows.released,
            [hex(saga(1).0)],
            "completed: released in the commit"
        );
        assert_eq!(d.heads[&saga(1)].seq, 4);
    }

    #[test]
    fn an_event_for_a_saga_the_log_does_not_have_is_refused_unwritten() {
        let d = decide_fresh(&[alert(7)], 0);
        assert!(matches!(d.results[0], Err(EngineError::NotAdmitted)));
        assert!(d.rows.events.is_empty() && d.rows.sagas.is_empty() && d.heads.is_empty());
    }

    #[test]
    fn a_second_admission_of_one_saga_is_refused() {
        let d = decide_fresh(&[admission(1, 10, 100), admission(1, 10, 100)], 0);
        assert!(d.results[0].is_ok());
        assert!(matches!(d.results[1], Err(EngineError::AlreadyAdmitted)));
        assert_eq!(d.rows.intents.len(), 1);
    }

    #[test]
    fn admissions_in_one_batch_promise_the_inventory_once() {
        let d = decide_fresh(&[admission(1, 60, 100), admission(2, 60, 100)], 0);
        assert!(d.results[0].is_ok());
        assert!(matches!(d.results[1], Err(EngineError::Inventory(_))));
        assert_eq!(d.rows.reservations.len(), 1);
        assert!(d.rows.reservations.contains_key(&(saga(1), usdc())));
        // The refused admission took no number: the next one does.
        assert_eq!(d.rows.sagas[&saga(1)].num, 1);
    }

    #[test]
    fn a_fenced_append_whose_fence_moved_on_is_refused() {
        let mut stored = HashMap::new();
        stored.insert(
            hex(saga(3).0),
            StoredSaga {
                num: 5,
                seq: 2,
                hash: hex(B256::repeat_byte(9)),
                fence: 4,
            },
        );
        let read = || Read {
            stored: stored.clone(),
            last_num: 5,
            ledger: Ledger::default(),
        };
        let mut stale = alert(3);
        stale.fence = Some(3);
        let d = decide(&[stale], &HashMap::new(), read(), clock()).unwrap();
        assert!(matches!(d.results[0], Err(EngineError::LeaseLost)));
        let mut current = alert(3);
        current.fence = Some(4);
        let d = decide(&[current], &HashMap::new(), read(), clock()).unwrap();
        assert_eq!(
            d.results[0].as_ref().unwrap().seq,
            3,
            "after the stored head"
        );
        assert_eq!(d.rows.events[0].prev_hash, hex(B256::repeat_byte(9)));
        assert_eq!(d.rows.events[0].saga_num, 5);
    }
}
