//! A proposed version's shadow run: the latest finished sagas re-run on anvil forks of their chains
//! under the version's bundle — its venues (settlers, tokens, pools), its planner's knobs, its
//! RPCs to fork from — with the replay machinery's trial (`baton_replay`), and each outcome
//! compared with the one the saga had. A saga that ends worse (fulfilled before, not now;
//! refunded before, failed now) is a regression; a version with one is approved only once an
//! operator overrides it with a reason. One instance runs it (it claims it in the database), in
//! the background: the version stays proposed until it is done.

use std::sync::Arc;

use alloy::primitives::{B256, U256};
use baton_engine::Outcome;
use baton_engine::changes::{Changes, State, Version};
use baton_engine::log::SagaFilter;
use baton_planner::ConfigPatch;
use baton_replay::Measured;
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
    /// Each output of the intent, in its order: what its fill delivered (base units; none: not
    /// delivered), as the saga ran.
    #[serde(default)]
    pub delivered_before: Vec<Option<String>>,
    /// The same on the forks under the version.
    #[serde(default)]
    pub delivered_after: Vec<Option<String>>,
    /// Seconds of chain time from the open's block to the last fill's, as the saga ran.
    #[serde(default)]
    pub secs_before: Option<u64>,
    /// The same on the forks under the version.
    #[serde(default)]
    pub secs_after: Option<u64>,
}

/// How much less an output may deliver on the forks before it counts as a regression, in basis
/// points: the re-plan prices the route again from the forks' pools and gas prices, which moved
/// between the saga's quote and its first transaction.
/// A change that costs users less than this (a fee a few basis points higher) shows in the
/// report's amounts, not as a regression.
const DELIVERED_SLACK_BPS: u32 = 100;

impl ShadowSaga {
    /// How the re-run ends worse than the saga did, if it does: a worse outcome; fulfilled
    /// both times but an output delivered short of what it got (beyond [`DELIVERED_SLACK_BPS`]);
    /// or more than three times as slow to its last fill, and 30 s more. Time on the forks is
    /// coarse (their blocks come every 300 ms, each a second of chain time, while the engine
    /// waits in wall time: 2 s as it ran, 4 s on the forks, seen on the devnet), so only a
    /// change of the path's shape (more blocks to wait for) shows.
    fn worse(&self) -> Option<String> {
        let after = self.after.as_deref();
        if after.map_or(0, rank) < rank(&self.before) {
            return Some(format!(
                "it ends {} instead of {}",
                after.unwrap_or("with no outcome"),
                self.before
            ));
        }
        if self.before == "fulfilled" && after == Some("fulfilled") {
            let amounts = self.delivered_before.iter().zip(&self.delivered_after);
            for (i, (before, after)) in amounts.enumerate() {
                let parse = |a: &Option<String>| a.as_deref().and_then(|a| a.parse::<U256>().ok());
                let (Some(before), Some(after)) = (parse(before), parse(after)) else {
                    continue;
                };
                let floor = before - before * U256::from(DELIVERED_SLACK_BPS) / U256::from(10_000);
                if after < floor {
                    return Some(format!("output {i} delivers {after} instead of {before}"));
                }
            }
            if let (Some(before), Some(after)) = (self.secs_before, self.secs_after)
                && after > before * 3 + 30
            {
                return Some(format!(
                    "its fills take {after} s of chain time instead of {before} s"
                ));
            }
        }
        None
    }
}

/// What a shadow run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShadowReport {
    /// The sagas re-run.
    pub sagas: Vec<ShadowSaga>,
    /// Sagas that could not be re-run (no transaction to fork from, a fork that did not start),
    /// with why.
    pub skipped: Vec<String>,
    /// What the run did otherwise than the saga did, in sentences (a settler upgrade: sagas
    /// re-run on the new settlers, signed by a stand-in user).
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
    let rpcs = bundle.rpc_urls();
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
    let mut report = ShadowReport::default();
    let mut stood_in = 0;
    for saga in finished {
        let Some(before) = saga.outcome.as_ref().map(name) else {
            continue;
        };
        let id = saga.id;
        info!(version = version.number, saga = %id, "shadow run: re-running a saga on forks");
        let replayed = baton_replay::replay(
            app.engine.log(),
            id,
            &rpcs,
            &anvil,
            Some(&trial),
            &|line: &str| tracing::debug!(saga = %id, "{line}"),
        )
        .await;
        let (after, measured_after, summary) = match replayed {
            Ok(r) => match r.trial {
                Some(t) => {
                    stood_in += usize::from(t.stand_in);
                    (t.outcome.as_ref().map(name), t.measured, t.summary)
                }
                None => (None, Measured::default(), "no trial ran".into()),
            },
            Err(baton_replay::ReplayError::Trial(e)) => (
                None,
                Measured::default(),
                format!("the change cannot run: {e}"),
            ),
            Err(e) => {
                report.skipped.push(format!("saga {id}: {e}"));
                continue;
            }
        };
        let measured_before = as_it_ran(app, id).await;
        let mut rerun = ShadowSaga {
            saga: id.to_string(),
            before,
            after,
            regression: false,
            summary,
            delivered_before: measured_before.delivered,
            delivered_after: measured_after.delivered,
            secs_before: measured_before.secs_to_outcome,
            secs_after: measured_after.secs_to_outcome,
        };
        if let Some(worse) = rerun.worse() {
            rerun.regression = true;
            rerun.summary = format!("{}; {worse}", rerun.summary);
        }
        report.sagas.push(rerun);
    }
    if stood_in > 0 {
        report.notes.push(format!(
            "{stood_in} saga(s) ran on settlers the version replaces: re-run on the new ones, \
             their orders signed by a stand-in user holding the user's inputs on the forks"
        ));
    }
    Ok(report)
}

/// What saga `id`'s fills delivered and how fast, as it ran (read through this instance's
/// adapters; nothing known: empty).
async fn as_it_ran(app: &App, id: baton_engine::SagaId) -> Measured {
    // Its signatures were checked at admission: planned as recovery plans it.
    let stored = app.engine.log().input(id).await.ok().flatten();
    let input = stored.and_then(|s| serde_json::from_str::<baton_engine::SagaInput>(&s).ok());
    let plan = input.and_then(|i| i.plan_stored().ok());
    let view = app.engine.view(id).await.ok().flatten();
    match (plan, view) {
        (Some(planned), Some(view)) => {
            baton_replay::measure(&view, &planned.plan, &app.engine.chains()).await
        }
        _ => Measured::default(),
    }
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

    fn rerun(before: &str, after: Option<&str>) -> ShadowSaga {
        ShadowSaga {
            saga: "0x01".into(),
            before: before.into(),
            after: after.map(str::to_owned),
            regression: false,
            summary: String::new(),
            delivered_before: vec![Some("1000000".into()), None],
            delivered_after: vec![Some("1000000".into()), None],
            secs_before: Some(8),
            secs_after: Some(9),
        }
    }

    #[test]
    fn a_saga_regresses_when_it_ends_worse_than_it_did() {
        let worse = |before: &str, after: Option<&str>| rerun(before, after).worse().is_some();
        assert!(worse("fulfilled", Some("refunded")));
        assert!(worse("fulfilled", None));
        assert!(worse("refunded", Some("failed")));
        assert!(!worse("refunded", Some("refunded")));
        assert!(!worse("refunded", Some("fulfilled")));
        assert!(!worse("failed", None));
        assert!(!worse("fulfilled", Some("fulfilled")));
        assert_eq!(name(&Outcome::Fulfilled), "fulfilled");
    }

    #[test]
    fn a_fulfilled_saga_regresses_when_it_delivers_less_or_takes_much_longer() {
        let mut short = rerun("fulfilled", Some("fulfilled"));
        short.delivered_after[0] = Some("989999".into());
        assert_eq!(
            short.worse().as_deref(),
            Some("output 0 delivers 989999 instead of 1000000")
        );
        // Within the slack of a re-priced route.
        short.delivered_after[0] = Some("990000".into());
        assert_eq!(short.worse(), None);
        let mut slow = rerun("fulfilled", Some("fulfilled"));
        slow.secs_after = Some(55);
        assert_eq!(
            slow.worse().as_deref(),
            Some("its fills take 55 s of chain time instead of 8 s")
        );
        slow.secs_after = Some(54);
        assert_eq!(slow.worse(), None);
        // Not measured on one side: nothing to compare.
        slow.secs_after = None;
        slow.delivered_after[0] = None;
        assert_eq!(slow.worse(), None);
    }
}
