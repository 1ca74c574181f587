//! The OpenAPI document is the exact contract: schemathesis (PyPI, pinned in
//! `tests/contract/requirements.txt`, installed by the README's test command) runs every check and
//! every phase against `baton serve` on a devnet — an admin key without a rate limit, and a real
//! intent for the operations that read one — and finds nothing: no undocumented status, no
//! response off its schema, no schema-valid request refused for its shape, no schema-violating
//! one accepted, no 5xx.

use std::process::Command;

use baton_adapters::devnet::{USER, dev_signer};

use crate::stack::{Stack, intent};

const FUZZ: &str = "fuzz-secret-0123456789abcdef";

/// The seed: fixed, so that a failure reproduces; `BATON_CONTRACT_SEED` picks another.
const SEED: &str = "20261202";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_served_api_true_to_its_document() {
    let python = std::env::var("BATON_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args([
            "-c",
            "import schemathesis, sys; print(schemathesis.__version__)",
        ])
        .output();
    let version = match probe {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        other => panic!(
            "schemathesis is not installed for {python}: run `{python} -m pip install -r \
             tests/contract/requirements.txt` (the README's test command does): {other:?}"
        ),
    };
    let pinned = include_str!("../contract/requirements.txt");
    assert!(
        pinned.contains(&format!("schemathesis=={version}\n")),
        "schemathesis {version} is installed; tests/contract/requirements.txt pins another"
    );

    let root = env!("CARGO_MANIFEST_DIR");
    let key_dir = std::env::temp_dir().join(format!("baton-contract-{}", std::process::id()));
    std::fs::create_dir_all(&key_dir).unwrap();
    let key_file = key_dir.join("fuzz.key");
    std::fs::write(&key_file, format!("{FUZZ}\n")).unwrap();
    let (stack, server) = Stack::builder("contract")
        .config(&format!(
            "[[api-keys]]\nname = \"fuzz\"\nrole = \"admin\"\nrequests-per-second = 100000\n\
             secret = {{ file = \"{}\" }}\n",
            key_file.display()
        ))
        .serve()
        .await;
    // A real intent, run to its end, for the operations that read one.
    let signed = server
        .quote_and_sign(&intent("01-usdc-a-to-weth-b.json"), &dev_signer(USER))
        .await;
    let id = server.submit(&signed).await.intent_id;
    server.outcome(&id).await;

    let config = stack.dir.join("schemathesis.toml");
    let mut text =
        std::fs::read_to_string(format!("{root}/tests/contract/schemathesis.toml")).unwrap();
    for path in [
        "/v1/intents/{id}",
        "/v1/intents/{id}/events",
        "/v1/operator/sagas/{id}/retry",
    ] {
        text.push_str(&format!(
            "\n[[operations]]\ninclude-path = \"{path}\"\nparameters = {{ \"path.id\" = \"{id}\" }}\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    let seed = std::env::var("BATON_CONTRACT_SEED").unwrap_or_else(|_| SEED.into());
    let run = || {
        Command::new(&python)
            .args([
                "-c",
                "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
                "--config-file",
            ])
            .arg(&config)
            .args([
                "run",
                &format!("{}/openapi.json", server.base),
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "40",
                "--workers",
                "2",
                "--seed",
                &seed,
                "--no-color",
                "-H",
                &format!("Authorization: Bearer {FUZZ}"),
            ])
            .current_dir(&stack.dir)
            .output()
            .unwrap()
    };
    let mut out = run();
    if tool_error_only(&String::from_utf8_lossy(&out.stdout)) {
        // Hypothesis, drawing requests on two workers, can trip over its own cache and call the
        // draw flaky: the tool's error, not a finding about the API. Run once more; a finding is
        // never run again.
        eprintln!(
            "schemathesis stopped on an error of its own; running it once more:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        out = run();
    }
    let _ = std::fs::remove_dir_all(&key_dir);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis (seed {seed}) found the API off its document:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran what it says it ran.
    assert!(report.contains("✅ Coverage"), "{report}");
    assert!(report.contains("✅ Fuzzing"), "{report}");
    assert!(report.contains("✅ Stateful"), "{report}");
    println!("{report}");
}

/// Whether a schemathesis report failed only on errors of the tool itself (Hypothesis calling its
/// own draw of a request flaky), with no check failing against the API.
fn tool_error_only(report: &str) -> bool {
    report.contains("= ERRORS =")
        && report.contains("hypothesis.errors.FlakyFailure")
        && !report.contains("= FAILURES =")
}

#[test]
fn only_an_error_of_schemathesis_itself_is_run_again() {
    let tool = "== ERRORS ==\n_ POST /v1/intents _\nRuntime Error\n\
                hypothesis.errors.FlakyFailure: Inconsistent results";
    assert!(tool_error_only(tool));
    let finding =
        format!("{tool}\n== FAILURES ==\n_ GET /v1/chains _\nUndocumented HTTP status code");
    assert!(!tool_error_only(&finding));
    assert!(!tool_error_only(
        "== ERRORS ==\nRuntime Error\nConnection refused"
    ));
    assert!(!tool_error_only("== FAILURES ==\nResponse violates schema"));
}
