//! `baton plan`, the offline job, and what the CLI says when a command cannot start.

use std::process::{Command, Output};

fn baton(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn plans_every_example_intent_as_its_file_expects() {
    let out = baton(&["plan"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("◆ pivot").count(),
        6,
        "five plans, one with two fills:\n{stdout}"
    );
    assert_eq!(stdout.matches("critical path to fulfillment").count(), 5);
    assert!(stdout.contains("refused [insufficient_liquidity]"));
    assert!(stdout.contains("the largest input that can be filled now is"));
    assert!(!stdout.contains("UNEXPECTED"));
}

#[test]
fn a_missing_or_malformed_file_is_a_clear_error_and_a_non_zero_exit() {
    let out = baton(&["plan", "no/such/intent.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reading no/such/intent.json"), "{err}");

    let dir = std::env::temp_dir().join(format!("baton-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{ "user": "0x01", "nonce": "1" }"#).unwrap();
    let out = baton(&["plan", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an intent file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_intent_that_does_not_plan_as_expected_fails_the_run() {
    let dir = std::env::temp_dir().join(format!("baton-cli-expect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/intents/05-beyond-inventory.json"
    ))
    .unwrap();
    let file = dir.join("x.json");
    std::fs::write(
        &file,
        text.replace("\"expect\": \"insufficient_liquidity\",", ""),
    )
    .unwrap();
    let out = baton(&["plan", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNEXPECTED"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_attester_without_its_key_or_chains_says_so_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("baton-cli-attester-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("attester.toml");
    let run = |text: &str, key: Option<&str>| {
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(["attester", "serve", "--config", config.to_str().unwrap()])
            .env_remove("BATON_TEST_ATTESTER_KEY");
        if let Some(k) = key {
            cmd.env("BATON_TEST_ATTESTER_KEY", k);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let keyed = "key = { env = \"BATON_TEST_ATTESTER_KEY\" }\n";
    let err = run(keyed, None);
    assert!(err.contains("BATON_TEST_ATTESTER_KEY is not set"), "{err}");
    let secret = "0xnot-a-key-but-a-secret";
    let err = run(keyed, Some(secret));
    assert!(err.contains("not a 32-byte hex private key"), "{err}");
    assert!(
        !err.contains("not-a-key-but-a-secret"),
        "the key is echoed: {err}"
    );
    let dev = baton_adapters::devnet::DEV_KEYS[7];
    let err = run(keyed, Some(dev));
    assert!(err.contains("no chains"), "{err}");
    let err = run(&format!("{keyed}threshold = 2\n"), Some(dev));
    assert!(err.contains("threshold"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
