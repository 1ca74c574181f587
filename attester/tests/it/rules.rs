//! What an attester signs, and what it refuses, on sim chains.

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use baton_adapters::attestation::signer_of;
use baton_adapters::contracts::TestToken;
use baton_adapters::devnet::{SOLVER, USER, dev_signer};
use baton_adapters::port::ChainAdapter;
use baton_attester::wire::{Answer, Claim, Pending, Refusal};
use baton_planner::order::Call;

use crate::{Bed, CONFIRMATIONS};

fn pending(a: &Answer) -> Pending {
    match a {
        Answer::Pending { reason, .. } => *reason,
        other => panic!("expected a pending answer, got {other:?}"),
    }
}

fn refused(a: &Answer) -> Refusal {
    match a {
        Answer::Refused { reason, .. } => *reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn approve(token: Address, spender: Address) -> Call {
    Call {
        outputIndex: 0,
        target: token,
        data: TestToken::approveCall {
            spender,
            amount: U256::from(1u8),
        }
        .abi_encode()
        .into(),
    }
}

#[tokio::test]
async fn a_fill_is_attested_once_it_is_final_and_matches_the_order() {
    let bed = Bed::new().await;
    let calls = vec![approve(bed.usdc_d, Address::repeat_byte(0x77))];
    let o = bed.open(1, 600, calls.clone()).await;
    let req = bed.fill_request(&o);
    let a = &bed.attester;
    assert_eq!(pending(&a.fill(&req).await.unwrap()), Pending::NotFilled);

    bed.fill(&o, o.output.clone(), calls).await.unwrap();
    assert_eq!(pending(&a.fill(&req).await.unwrap()), Pending::NotFinal);
    bed.dest.mine(CONFIRMATIONS - 1);
    let Answer::Signed(signed) = a.fill(&req).await.unwrap() else {
        panic!("a final, matching fill is attested");
    };
    let Claim::Fill { filler, deliveries } = &signed.claim else {
        panic!("a fill claim");
    };
    assert_eq!(*filler, bed.solver_d.account());
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(
        (d.output_index, d.chain, d.settler, d.token, d.amount),
        (
            0,
            bed.dest.chain_id(),
            bed.dest.settlers().destination,
            bed.usdc_d,
            U256::from(990u64)
        )
    );
    let digest = bed.at().fill_hash(o.id, *filler, deliveries);
    assert_eq!(signer_of(digest, &signed.signature), Some(a.address()));
    assert_eq!(signed.signer, a.address());

    // Asked again: the same attestation. A cancel of a filled order: never.
    assert_eq!(a.fill(&req).await.unwrap(), Answer::Signed(signed.clone()));
    let cancel = bed.cancel_request(&o, Some(&dev_signer(SOLVER)));
    assert_eq!(
        refused(&a.cancel(&cancel).await.unwrap()),
        Refusal::Conflict
    );
    // Another filler asked about: a mismatch.
    let mut other = req.clone();
    other.filler = dev_signer(USER).address();
    assert_eq!(refused(&a.fill(&other).await.unwrap()), Refusal::Mismatch);
}

#[tokio::test]
async fn a_short_misdirected_or_miscalled_fill_is_refused() {
    let bed = Bed::new().await;
    let a = &bed.attester;
    let calls = vec![approve(bed.usdc_d, Address::repeat_byte(0x77))];

    let short = bed.open(1, 600, calls.clone()).await;
    let mut less = short.output.clone();
    less.amount -= U256::from(1u8);
    bed.fill(&short, less, calls.clone()).await.unwrap();

    let misdirected = bed.open(2, 600, calls.clone()).await;
    let mut elsewhere = misdirected.output.clone();
    elsewhere.recipient = dev_signer(SOLVER).address().into_word();
    bed.fill(&misdirected, elsewhere, calls.clone())
        .await
        .unwrap();

    let miscalled = bed.open(3, 600, calls).await;
    let other_calls = vec![approve(bed.usdc_d, Address::repeat_byte(0x66))];
    bed.fill(&miscalled, miscalled.output.clone(), other_calls)
        .await
        .unwrap();

    bed.dest.mine(CONFIRMATIONS);
    for o in [&short, &misdirected, &miscalled] {
        let answer = a.fill(&bed.fill_request(o)).await.unwrap();
        assert_eq!(refused(&answer), Refusal::Mismatch, "{answer:?}");
    }
    // The destination settler takes one fill per output: none of these orders can be attested.
    let again = bed
        .fill(&short, short.output.clone(), short.calls.clone())
        .await;
    assert!(again.unwrap_err().contains("already filled"));
}

#[tokio::test]
async fn orders_of_settlers_and_chains_it_does_not_know_are_refused() {
    let bed = Bed::new().await;
    let o = bed.open(1, 600, Vec::new()).await;
    let a = &bed.attester;
    let mut req = bed.fill_request(&o);
    req.order.originSettler = Address::repeat_byte(0x55);
    assert_eq!(
        refused(&a.fill(&req).await.unwrap()),
        Refusal::UnknownSettler
    );
    let mut req = bed.fill_request(&o);
    req.order.originChainId = U256::from(4242u64);
    assert_eq!(refused(&a.fill(&req).await.unwrap()), Refusal::UnknownChain);
    let mut req = bed.fill_request(&o);
    req.order.orderData = vec![1u8, 2, 3].into();
    assert_eq!(refused(&a.fill(&req).await.unwrap()), Refusal::BadRequest);
    // An order never opened: not yet.
    let mut req = bed.fill_request(&o);
    req.order.nonce += U256::from(1u8);
    assert_eq!(pending(&a.fill(&req).await.unwrap()), Pending::NotOpened);
}

#[tokio::test]
async fn a_cancel_waits_for_the_deadline_or_the_openers_request_and_then_no_fill_is_attested() {
    let bed = Bed::new().await;
    let a = &bed.attester;
    let o = bed.open(1, 60, Vec::new()).await;

    // Before the fill deadline, without the opener's request: not yet.
    let plain = bed.cancel_request(&o, None);
    assert_eq!(
        pending(&a.cancel(&plain).await.unwrap()),
        Pending::DeadlineNotPassed
    );
    // Asked early by someone else than the opener (the user): refused.
    let by_user = bed.cancel_request(&o, Some(&dev_signer(USER)));
    assert_eq!(
        refused(&a.cancel(&by_user).await.unwrap()),
        Refusal::NotOpener
    );
    // By the opener (the solver): signed, and from then on no fill of it is attested.
    let early = bed.cancel_request(&o, Some(&dev_signer(SOLVER)));
    let Answer::Signed(cancel) = a.cancel(&early).await.unwrap() else {
        panic!("the opener's early cancel is signed");
    };
    assert_eq!(cancel.claim, Claim::Cancel);
    assert_eq!(
        signer_of(bed.at().cancel_hash(o.id), &cancel.signature),
        Some(a.address())
    );
    bed.fill(&o, o.output.clone(), Vec::new()).await.unwrap();
    bed.dest.mine(CONFIRMATIONS);
    let late = a.fill(&bed.fill_request(&o)).await.unwrap();
    assert_eq!(refused(&late), Refusal::Conflict);
    // The same cancel, asked again (even without the request): the stored answer.
    assert_eq!(a.cancel(&plain).await.unwrap(), Answer::Signed(cancel));

    // Past the deadline on the destination, by final blocks: anyone's request is signed.
    let expired = bed.open(2, 30, Vec::new()).await;
    let plain = bed.cancel_request(&expired, None);
    bed.dest.advance_time(31);
    bed.dest.mine(1);
    assert_eq!(
        pending(&a.cancel(&plain).await.unwrap()),
        Pending::DeadlineNotPassed,
        "the block past the deadline is not final yet"
    );
    bed.dest.mine(CONFIRMATIONS);
    assert!(matches!(a.cancel(&plain).await.unwrap(), Answer::Signed(_)));
}
