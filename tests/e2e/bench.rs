//! `baton bench`: the commands behind BENCHMARKS.md run, count what they ran, and refuse bad
//! arguments. (Their figures are measurements, not asserted here.)

use std::process::{Command, Output};

use serde_json::Value;

fn baton(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_engine_bench_runs_every_saga_to_its_outcome_and_reports_as_json() {
    let report = json(&baton(&[
        "bench",
        "engine",
        "--sagas",
        "20",
        "--concurrency",
        "4",
        "--fail-fraction",
        "0.25",
        "--json",
    ]));
    assert_eq!(report["bench"], "engine");
    assert_eq!(report["sagas"], 20);
    // Five fills were made to revert: those sagas compensate and refund the user.
    assert_eq!(report["outcomes"]["fulfilled"], 15, "{report}");
    assert_eq!(report["outcomes"]["refunded"], 5, "{report}");
    assert!(report["sagas_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["events_per_commit"].as_f64().unwrap() >= 1.0);
    assert!(report["block_ms"].as_f64().unwrap() > 0.0, "{report}");
    // Every saga signs three transactions at least: open, fill and settle (or open, fill, refund).
    assert!(report["txs_per_saga"].as_f64().unwrap() >= 3.0, "{report}");
    // And looks at its steps once per transaction at least (it signs them in its ticks).
    assert!(
        report["ticks_per_saga"].as_f64().unwrap() >= 3.0,
        "{report}"
    );
    // What the durable log cost the disk is reported for a SQLite log (its value is zero where
    // /proc/self/io is missing, or on tmpfs, so only its presence is checked).
    assert!(report["disk_kib_per_saga"].is_number(), "{report}");
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn the_recovery_bench_resumes_every_in_flight_saga() {
    let report = json(&baton(&["bench", "recovery", "--sagas", "50", "--json"]));
    assert_eq!(report["sagas"], 50);
    assert_eq!(report["resumed_in_total"], 50, "{report}");
}

#[test]
fn bad_bench_arguments_are_refused_with_a_message() {
    let out = baton(&["bench", "engine", "--fail-fraction", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fail-fraction"));
    let out = baton(&["bench", "e2e", "--chains", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chains"));
}
