//! A change to the planner's knobs: each field set replaces the knob, each field unset keeps it.
//! Operators try one on forks (`baton replay --with FILE`) and resume a held saga with it; the
//! saga log records it with the resume.

use serde::{Deserialize, Serialize};

use crate::planner::PlannerConfig;

/// Knobs to change; unset ones stay as they were. An unknown key is an error (a typo must not
/// silently change nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    /// Most pool swaps in one route.
    pub max_hops: Option<usize>,
    /// Swap slippage bound, basis points.
    pub slippage_bps: Option<u32>,
    /// Fee ceiling, percent of the snapshot's gas price.
    pub fee_ceiling_pct: Option<u32>,
    /// Whether a leg may be split across two routes.
    pub split: Option<bool>,
}

impl ConfigPatch {
    /// `config` with the patch's knobs set.
    pub fn apply(&self, mut config: PlannerConfig) -> PlannerConfig {
        if let Some(v) = self.max_hops {
            config.max_hops = v;
        }
        if let Some(v) = self.slippage_bps {
            config.slippage_bps = v;
        }
        if let Some(v) = self.fee_ceiling_pct {
            config.fee_ceiling_pct = v;
        }
        if let Some(v) = self.split {
            config.split = v;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_only_the_knobs_it_sets() {
        let base = PlannerConfig::default();
        let patch = ConfigPatch {
            slippage_bps: Some(400),
            split: Some(!base.split),
            ..ConfigPatch::default()
        };
        let patched = patch.apply(base);
        assert_eq!(patched.slippage_bps, 400);
        assert_eq!(patched.split, !base.split);
        assert_eq!(patched.max_hops, base.max_hops);
        assert_eq!(patched.fee_ceiling_pct, base.fee_ceiling_pct);
        assert_eq!(ConfigPatch::default().apply(base), base);
    }

    #[test]
    fn an_unknown_knob_is_refused() {
        let err = serde_json::from_str::<ConfigPatch>(r#"{"slipage_bps": 10}"#);
        assert!(err.is_err());
    }
}
