//! A replay report as text for a terminal.

use std::fmt::Write;

use crate::report::{Report, TxResult};

/// `r` in words: `succeeded (block 7)`, `reverted (block 7: reason)`, `was never included (why)`.
pub(crate) fn describe(r: &TxResult) -> String {
    match r {
        TxResult::Succeeded { block, .. } => format!("succeeded (block {block})"),
        TxResult::Reverted { block, reason } => format!(
            "reverted (block {block}: {})",
            reason.as_deref().unwrap_or("no reason")
        ),
        TxResult::NotIncluded { reason } => format!("was never included ({reason})"),
    }
}

/// The report as text for a terminal: the forks, one line per saga transaction (`=` where the
/// fork agrees with the log, `≠` where not), the failing step with its trace, the summary, and
/// the trial and resume when there are.
pub fn render(report: &Report) -> String {
    let mut out = format!("replay of saga {}\n", report.saga_id);
    for f in &report.forks {
        let _ = writeln!(
            out,
            "  fork of chain {} at block {}: {} block(s), {} transaction(s) replayed",
            f.chain, f.block, f.blocks_replayed, f.txs_replayed
        );
    }
    for s in &report.steps {
        let _ = writeln!(
            out,
            "  {} step {:>2}{} {:<8} chain {}: log {}, fork {}",
            if s.matches { "=" } else { "≠" },
            s.step,
            if s.compensation {
                " (compensation)"
            } else {
                ""
            },
            s.action,
            s.chain,
            describe(&s.recorded),
            describe(&s.replayed),
        );
    }
    if let Some(f) = &report.failing_step {
        let _ = writeln!(
            out,
            "failing step {} ({}) on chain {}: {}",
            f.step,
            f.action,
            f.chain,
            f.revert_reason.as_deref().unwrap_or("no reason given")
        );
        for line in &f.trace {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = writeln!(out, "{}", report.summary);
    if let Some(t) = &report.trial {
        let _ = writeln!(out, "trial {}: {}", serde_json::json!(t.change), t.summary);
        for step in &t.plan {
            let _ = writeln!(out, "    {step}");
        }
    }
    if let Some(r) = &report.resume {
        let _ = writeln!(out, "resume: {}", r.summary);
    }
    let _ = writeln!(out, "(took {} ms)", report.took_ms);
    out
}
