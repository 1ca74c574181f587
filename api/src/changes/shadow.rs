//! A proposed version's shadow run: the latest finished sagas re-run on anvil forks of their chains
//! under the version's bundle — its venues (settlers, tokens, pools), its planner's knobs, its
//! RPCs to fork from — with the replay machinery's trial (`baton_replay`), and each outcome
//! compared with the one the saga had. A saga that ends worse (fulfilled before, not now;
//! refunded before, failed now) is a regression; a version with one is approved only once an
//! operator overrides it with a reason. One instance runs it (it claims it in the database), in
//! the background: the version stays proposed until it is done.

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::B256;
use baton_engine::Outcome;
use baton_engine::adapters::abi::Settlers;
use baton_engine::changes::{Changes, State, Version};
use baton_engine::log::SagaFilter;
use baton_planner::{ChainId, ConfigPatch};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::App;
use crate::dto::config::Bundle;

/// A claim left unfinished this long (its instance died) is taken over.
const STALE_MS: i64 = 30 * 60 * 1000;

/// One saga re-run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowSaga {
    /// The saga (intent) id.
    pub saga: String,
    /// Its outcome.
    pub before: String,
    /// Its outcome on the forks under the version (none: it reached none, or could not run).
    pub after: Option<String>,
    /// Whether it ended worse.
    pub regression: bool,
    /// What happened, in a sentence.
    pub summary: String,
}

/// What a shadow run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowReport {
    /// The sagas re-run.
    pub sagas: Vec<ShadowSaga>,
    /// Sagas that could not be re-run (no transaction to fork from, a fork that did not start),
    /// with why.
    pub skipped: Vec<String>,
    /// What the run could not try, in sentences (a settler upgrade: the sagas re-ran on the
    /// settlers their users signed for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ShadowReport {
    /// How many sagas ended worse.
    pub fn regressions(&self) -> usize {
        self.sagas.iter().filter(|s| s.regression).count()
    }

    /// The report in a sentence.
    pub fn sentence(&self) -> String {
        let mut out = format!(
            "shadow run: {} saga(s) re-run on forks, {} ending worse",
            self.sagas.len(),
            self.regressions()
        );
        for s in self.sagas.iter().filter(|s| s.regression) {
            out.push_str(&format!(
                " (saga {}: {} before, {} now: {})",
                s.saga,
                s.before,
                s.after.as_deref().unwrap_or("no outcome"),
                s.summary
            ));
        }
        if !self.skipped.is_empty() {
            out.push_str(&format!(", {} skipped", self.skipped.len()));
        }
        for note in &self.notes {
            out.push_str(&format!("; {note}"));
        }
        out
    }
}

fn rank(outcome: &str) -> u8 {
    match outcome {
        "fulfilled" => 2,
        "refunded" => 1,
        _ => 0,
    }
}

fn name(outcome: &Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{outcome:?}").to_lowercase())
}

/// Whether a shadow run of `version` is for this instance to start now: shadow runs are on (a
/// switcher, a solver key for trials, `shadow_sagas` above 0) and this instance claims it.
pub(crate) async fn claim(
    app: &App,
    changes: &Changes,
    version: &Version,
    instance: &str,
) -> Result<bool, baton_engine::EngineError> {
    if !on(app) {
        return Ok(false);
    }
    let now = baton_engine::now_ms();
    changes
        .claim_shadow(
            version.id,
            instance,
            version.updated_ms,
            now - STALE_MS,
            now,
        )
        .await
}

/// Whether shadow runs are on here.
pub(crate) fn on(app: &App) -> bool {
    app.switcher.is_some() && app.trial_key.is_some() && app.settings.shadow_sagas > 0
}

/// Runs version `version`'s shadow run (claimed by this instance), records what it found, and
/// validates the version with `checked` and the run's sentence.
pub(crate) async fn run(app: Arc<App>, version: Version, checked: String, by: String) {
    let changes = super::changes(&app);
    let report = match shadow(&app, &version).await {
        Ok(report) => report,
        Err(e) => {
            warn!(version = version.number, error = %e, "shadow run failed; validated without one");
            ShadowReport {
                skipped: vec![format!("the shadow run could not run: {e}")],
                ..ShadowReport::default()
            }
        }
    };
    let json = serde_json::to_string(&report).unwrap_or_default();
    let now = baton_engine::now_ms();
    let recorded = changes
        .finish_shadow(
            version.id,
            report.sagas.len() as u64,
            report.regressions() as u64,
            &json,
            now,
        )
        .await;
    if let Err(e) = recorded {
        warn!(version = version.number, error = %e, "recording the shadow run failed");
        return;
    }
    let detail = format!("{checked}; {}", report.sentence());
    match changes
        .transition(version.id, State::Validated, &by, &detail, now)
        .await
    {
        Ok(v) => info!(version = v.number, %detail, "configuration version validated"),
        Err(e) => warn!(version = version.number, error = %e, "after its shadow run"),
    }
}

/// Re-runs the latest finished sagas under `version`'s bundle.
async fn shadow(app: &App, version: &Version) -> Result<ShadowReport, String> {
    let bundle: Bundle = serde_json::from_str(&version.body).map_err(|e| e.to_string())?;
    let switcher = app.switcher.as_ref().ok_or("no switcher")?;
    let solver = app.trial_key.clone().ok_or("no solver key for trials")?;
    let venues = switcher.venues(&bundle)?;
    let rpcs: HashMap<ChainId, String> = bundle
        .chains
        .iter()
        .map(|c| (ChainId(c.id), c.rpc_url.0.clone()))
        .collect();
    let anvil = baton_engine::adapters::devnet::find_anvil().map_err(|e| e.to_string())?;
    // The latest sagas with their outcome (a fulfilled one may still be settling), however many
    // are running beside them.
    let mut finished = Vec::new();
    for outcome in ["fulfilled", "refunded", "failed"] {
        let filter = SagaFilter {
            outcome: Some(outcome.into()),
            limit: i64::try_from(app.settings.shadow_sagas).unwrap_or(i64::MAX),
            ..SagaFilter::default()
        };
        finished.extend(app.engine.sagas(&filter).await.map_err(|e| e.to_string())?);
    }
    finished.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
    finished.truncate(app.settings.shadow_sagas);
    let trial = baton_replay::Trial {
        change: ConfigPatch {
            max_hops: Some(bundle.planner.max_hops as usize),
            slippage_bps: Some(bundle.planner.slippage_bps),
            fee_ceiling_pct: Some(bundle.planner.fee_ceiling_pct),
            split: Some(bundle.planner.split),
        },
        venues,
        solver,
    };
    let changes = super::changes(app);
    let mut report = ShadowReport::default();
    // Each saga's settlers, by the version it was admitted under.
    let mut settlers_then: HashMap<B256, HashMap<ChainId, Settlers>> = HashMap::new();
    let mut kept: Vec<u64> = Vec::new();
    for saga in finished {
        let Some(before) = saga.outcome.as_ref().map(name) else {
            continue;
        };
        let id = saga.id;
        info!(version = version.number, saga = %id, "shadow run: re-running a saga on forks");
        let mut trial = trial.clone();
        let then = admitted_under(app, &changes, id, &mut settlers_then).await;
        for venue in &mut trial.venues {
            // The user signed the saga's orders for the settlers of its own version: where this
            // version replaces them (a settler upgrade, for intents admitted after it), the saga
            // re-runs on those, under the rest of the change.
            if let Some(old) = then.get(&venue.chain)
                && *old != venue.settlers
            {
                venue.settlers = *old;
                if !kept.contains(&venue.chain.0) {
                    kept.push(venue.chain.0);
                }
            }
        }
        let replayed = baton_replay::replay(
            app.engine.log(),
            id,
            &rpcs,
            &anvil,
            Some(&trial),
            &|line: &str| tracing::debug!(saga = %id, "{line}"),
        )
        .await;
        let (after, summary) = match replayed {
            Ok(r) => match r.trial {
                Some(t) => (t.outcome.as_ref().map(name), t.summary),
                None => (None, "no trial ran".into()),
            },
            Err(baton_replay::ReplayError::Trial(e)) => {
                (None, format!("the change cannot run: {e}"))
            }
            Err(e) => {
                report.skipped.push(format!("saga {id}: {e}"));
                continue;
            }
        };
        let regression = after.as_deref().map_or(0, rank) < rank(&before);
        report.sagas.push(ShadowSaga {
            saga: id.to_string(),
            before,
            after,
            regression,
            summary,
        });
    }
    if !kept.is_empty() {
        kept.sort_unstable();
        let chains: Vec<String> = kept.iter().map(u64::to_string).collect();
        report.notes.push(format!(
            "the version replaces the settlers on chain(s) {}: sagas re-ran there on the settlers \
             their users signed for (the new ones serve intents admitted after activation; their \
             code hashes were checked)",
            chains.join(", ")
        ));
    }
    Ok(report)
}

/// The settlers, by chain, of the version saga `id` was admitted under (none known: empty),
/// read once per version into `cache`.
async fn admitted_under(
    app: &App,
    changes: &Changes,
    id: baton_engine::SagaId,
    cache: &mut HashMap<B256, HashMap<ChainId, Settlers>>,
) -> HashMap<ChainId, Settlers> {
    let input: Option<baton_engine::SagaInput> = app
        .engine
        .log()
        .input(id)
        .await
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str(&s).ok());
    let Some(version) = input.and_then(|i| i.config_version) else {
        return HashMap::new();
    };
    if let Some(known) = cache.get(&version) {
        return known.clone();
    }
    let settlers: HashMap<ChainId, Settlers> = match changes.version(version).await {
        Ok(Some(v)) => serde_json::from_str::<Bundle>(&v.body)
            .ok()
            .and_then(|b| app.switcher.as_ref()?.venues(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.chain, v.settlers))
            .collect(),
        _ => HashMap::new(),
    };
    cache.insert(version, settlers.clone());
    settlers
}

/// The record of version `id`'s shadow run for the API.
pub(crate) async fn of(
    changes: &Changes,
    id: B256,
) -> Result<Option<crate::dto::config::ShadowRun>, baton_engine::EngineError> {
    Ok(changes.shadow(id).await?.map(|s| {
        let report: Option<ShadowReport> = s
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        crate::dto::config::ShadowRun {
            by_instance: s.by_instance,
            started_ms: s.started_ms,
            finished_ms: s.finished_ms,
            sagas: s.sagas,
            regressions: s.regressions,
            report,
            overridden_by: s.overridden.as_ref().map(|o| o.0.clone()),
            override_reason: s.overridden.as_ref().map(|o| o.1.clone()),
            overridden_ms: s.overridden.as_ref().map(|o| o.2),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saga_regresses_when_it_ends_worse_than_it_did() {
        let worse = |before: &str, after: Option<&str>| after.map_or(0, rank) < rank(before);
        assert!(worse("fulfilled", Some("refunded")));
        assert!(worse("fulfilled", None));
        assert!(worse("refunded", Some("failed")));
        assert!(!worse("refunded", Some("refunded")));
        assert!(!worse("refunded", Some("fulfilled")));
        assert!(!worse("failed", None));
        assert_eq!(name(&Outcome::Fulfilled), "fulfilled");
    }
}
