//! `baton plan`: intent files planned over a liquidity snapshot, each plan printed (or why it
//! cannot be planned) and checked against the file's `expect`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baton_planner::spec::{IntentSpec, SnapshotSpec};
use baton_planner::{LiquidityGraph, LiquiditySnapshot, PlannerConfig, describe::describe, plan};

/// Plans every intent file; fails when a file cannot be read or a plan's result differs from the
/// file's `expect`.
pub(crate) fn plan_files(
    paths: &[PathBuf],
    snapshot: &Path,
    config: &PlannerConfig,
) -> Result<ExitCode> {
    let snapshot = read_snapshot(snapshot)?;
    let graph = LiquidityGraph::new(snapshot).context("building the liquidity graph")?;
    let mut unexpected = 0;
    for path in intent_files(paths)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let spec: IntentSpec = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an intent file", path.display()))?;
        let name = if spec.name.is_empty() {
            path.display().to_string()
        } else {
            spec.name.clone()
        };
        let expect = spec.expect.clone();
        println!("== {name} ({})", path.display());
        let result = spec
            .into_intent(graph.snapshot())
            .and_then(|i| plan(&graph, &i, config));
        let got = match &result {
            Ok(p) => {
                print!("{}", describe(p, graph.snapshot()));
                None
            }
            Err(e) => {
                println!("  refused [{}]: {e}", e.code());
                Some(e.code().to_string())
            }
        };
        if got != expect {
            unexpected += 1;
            println!(
                "  UNEXPECTED: the file expects {}",
                expect.as_deref().unwrap_or("a plan")
            );
        }
        println!();
    }
    if unexpected > 0 {
        bail!("{unexpected} intent(s) did not plan as their files expect");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_snapshot(path: &Path) -> Result<LiquiditySnapshot> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading snapshot {}", path.display()))?;
    let spec: SnapshotSpec = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a snapshot file", path.display()))?;
    Ok(spec.into_snapshot()?)
}

pub(crate) fn intent_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}
