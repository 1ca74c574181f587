//! What a saga runs: the intent, the liquidity it was planned over, the planner's knobs and the
//! user's signatures — stored with the saga, so that recovery re-plans it exactly (the planner is
//! pure) and checks the plan's hash against the one the saga started with.

use alloy::primitives::{B256, Bytes, keccak256};
use baton_planner::spec::{IntentSpec, SnapshotSpec};
use baton_planner::{Intent, LiquidityGraph, LiquiditySnapshot, Plan, PlannerConfig};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::event::{SagaEvent, SagaId};

/// A saga's input. Deadlines in `intent` must be absolute (`at`), so re-planning later gives the
/// same intent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SagaInput {
    /// The intent.
    pub intent: IntentSpec,
    /// The liquidity snapshot it is planned over.
    pub snapshot: SnapshotSpec,
    /// The planner's knobs.
    #[serde(default)]
    pub config: PlannerConfig,
    /// The user's signature of each order, in the plan's order.
    pub signatures: Vec<Bytes>,
    /// The configuration the saga was admitted under: the id of the bundle the admitting instance
    /// ran (see [`crate::changes`]); none for sagas admitted before versions were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<B256>,
}

/// A planned saga input.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Its hash (of its steps).
    pub hash: B256,
    /// The user's signatures, one per order.
    pub signatures: Vec<Bytes>,
    /// The configuration it was admitted under (its input's).
    pub config_version: Option<B256>,
}

impl Planned {
    /// Whether every order carries its user's signature: what a change of settlers breaks (the
    /// user signed for the others).
    pub fn signed_by_user(&self) -> bool {
        self.check_signatures().is_ok()
    }

    fn check_signatures(&self) -> Result<()> {
        let plan = &self.plan;
        let invalid = |why: String| EngineError::Invalid(why);
        let user = plan.intent().user();
        if plan.orders().len() != self.signatures.len() {
            return Err(invalid(format!(
                "{} order(s) need {} signature(s), {} given",
                plan.orders().len(),
                plan.orders().len(),
                self.signatures.len()
            )));
        }
        for (order, sig) in plan.orders().iter().zip(&self.signatures) {
            let signer = alloy::primitives::Signature::from_raw(sig)
                .ok()
                .and_then(|s| baton_adapters::signers::recover(order.signing_hash(), s).ok());
            if signer != Some(user) {
                return Err(invalid(format!(
                    "the signature of order {} is not the user's",
                    order.id().0
                )));
            }
        }
        Ok(())
    }
}

impl SagaInput {
    /// Plans the input. Fails when it does not plan, or when the signatures do not match the
    /// orders (one 65-byte signature per order, recovering to the user).
    pub fn plan(&self) -> Result<Planned> {
        let planned = self.plan_stored()?;
        planned.check_signatures()?;
        Ok(planned)
    }

    /// Plans an input the engine stored itself after checking it: recovery trusts the signatures
    /// it checked at submission, and checks the plan's hash against the saga's instead.
    pub fn plan_stored(&self) -> Result<Planned> {
        Ok(self.planned(self.plan_unsigned()?))
    }

    /// `plan`, made from this input by a caller that checked its signatures itself (the API, at
    /// intake): the saga runs what the caller planned, without planning it again.
    pub fn planned(&self, plan: Plan) -> Planned {
        let hash = keccak256(format!("{:?}", plan.steps()));
        Planned {
            plan,
            hash,
            signatures: self.signatures.clone(),
            config_version: self.config_version,
        }
    }

    /// The same intent and signed orders over another `snapshot` with other knobs: what a trial
    /// or an operator's resume plans.
    pub fn replanned(&self, snapshot: SnapshotSpec, config: PlannerConfig) -> SagaInput {
        SagaInput {
            intent: self.intent.clone(),
            snapshot,
            config,
            signatures: self.signatures.clone(),
            config_version: self.config_version,
        }
    }

    /// What saga `saga` runs: the input of its latest operator resume (`Resumed`), else `body`,
    /// the one it was admitted with (stored JSON); and the hash of the plan its log says it runs
    /// (the resume's, else `Started`'s).
    pub fn running<'e>(
        saga: SagaId,
        body: &str,
        events: impl IntoIterator<Item = &'e SagaEvent>,
    ) -> Result<(SagaInput, Option<B256>)> {
        let (mut started, mut resumed) = (None, None);
        for event in events {
            match event {
                SagaEvent::Started { plan, .. } => started = Some(*plan),
                SagaEvent::Resumed { input, plan, .. } => resumed = Some((input, *plan)),
                _ => {}
            }
        }
        let input = match resumed {
            Some((input, _)) => serde_json::from_value(input.clone()),
            None => serde_json::from_str(body),
        }
        .map_err(|e| EngineError::Corrupt(format!("intent of saga {saga}: {e}")))?;
        Ok((input, resumed.map(|(_, plan)| plan).or(started)))
    }

    /// Signs every order as `user` would (its EIP-712 digest), replacing the signatures: for tests,
    /// benchmarks and demos holding the user's key.
    pub fn sign_as(&mut self, user: &alloy::signers::local::PrivateKeySigner) -> Result<()> {
        use alloy::signers::SignerSync;
        self.signatures = self
            .orders()?
            .iter()
            .map(|o| {
                user.sign_hash_sync(&o.signing_hash())
                    .map(|s| Bytes::from(s.as_bytes().to_vec()))
                    .map_err(|e| EngineError::Invalid(format!("signing order {}: {e}", o.id().0)))
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// The orders the user must sign, in order (the plan, before signatures are checked).
    pub fn orders(&self) -> Result<Vec<baton_planner::Order>> {
        Ok(self.plan_unsigned()?.orders().to_vec())
    }

    fn plan_unsigned(&self) -> Result<Plan> {
        let invalid = |why: String| EngineError::Invalid(why);
        let snapshot: LiquiditySnapshot = self
            .snapshot
            .clone()
            .into_snapshot()
            .map_err(|e| invalid(format!("snapshot: {e}")))?;
        let intent: Intent = self
            .intent
            .clone()
            .into_intent(&snapshot)
            .map_err(|e| invalid(format!("intent: {e}")))?;
        let graph = LiquidityGraph::new(snapshot).map_err(|e| invalid(format!("graph: {e}")))?;
        baton_planner::plan(&graph, &intent, &self.config)
            .map_err(|e| invalid(format!("plan: {e}")))
    }
}

/// A saga as its log has it — the input it runs (the latest `Resumed` one, else the admitted one),
/// its events, and its state folded from them — or `None` when it is not in the log.
pub async fn stored(
    log: &crate::log::SagaLog,
    saga: SagaId,
) -> Result<
    Option<(
        SagaInput,
        Vec<crate::log::StoredEvent>,
        crate::saga::state::SagaState,
    )>,
> {
    let Some(body) = log.input(saga).await? else {
        return Ok(None);
    };
    let events = log.events(saga).await?;
    let (input, _) = SagaInput::running(saga, &body, events.iter().map(|e| &e.event))?;
    let state =
        crate::saga::state::SagaState::from_events(events.iter().map(|e| (e.seq, &e.event)));
    Ok(Some((input, events, state)))
}
