//! `baton devnet up|settlers|down`: nodes and attesters that outlive the command, described in a
//! file, given another settler pair by `settlers` (the attesters restarted to trust it), stopped
//! by `down`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn baton(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// Runs `baton devnet down` on drop, so a failing test leaves no node behind.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = baton(&["devnet", "down", "--file", self.0.to_str().unwrap()], &[]);
        }
    }
}

/// Whether `pid` is a running process whose command line has `marker` (an exited one may linger as
/// a zombie with an empty command line until its new parent reaps it).
fn running(pid: u64, marker: &str) -> bool {
    std::fs::read(Path::new(&format!("/proc/{pid}/cmdline")))
        .map(|c| String::from_utf8_lossy(&c).contains(marker))
        .unwrap_or(false)
}

/// Whether `pid` is a running anvil.
fn alive(pid: u64) -> bool {
    running(pid, "anvil")
}

/// The health of the attester at `url`.
fn health(url: &serde_json::Value) -> serde_json::Value {
    let health = format!("{}v1/health", url.as_str().unwrap());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(&health).await.unwrap().json().await.unwrap() })
}

#[test]
fn devnet_up_leaves_nodes_running_and_down_stops_them() {
    let dir = std::env::temp_dir().join(format!("baton-devnet-{}", std::process::id()));
    let file = dir.join("devnet.json");
    let guard = Down(file.clone());
    let path = file.to_str().unwrap();

    let out = baton(&["devnet", "up", "--chains", "2", "--file", path], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let described: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let chains = described["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2);
    assert_eq!(
        (
            chains[0]["chain_id"].as_u64(),
            chains[1]["chain_id"].as_u64()
        ),
        (Some(1001), Some(1002))
    );
    let pids: Vec<u64> = chains.iter().map(|c| c["pid"].as_u64().unwrap()).collect();
    assert!(
        pids.iter().all(|p| alive(*p)),
        "the nodes outlive `devnet up`"
    );
    assert!(
        chains[0]["rpc_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(described["accounts"]["user"]["index"], 1);
    // Three attesters, each its own process, answering on their URLs.
    let attesters = described["attesters"].as_array().unwrap();
    assert_eq!(attesters.len(), 3);
    for a in attesters {
        let body = health(&a["url"]);
        assert_eq!(body["status"], "ok", "{body}");
        assert_eq!(
            body["address"].as_str().unwrap().to_lowercase(),
            a["address"].as_str().unwrap().to_lowercase()
        );
    }

    // A settler upgrade's new pair on each chain: recorded in the file, and the attesters,
    // restarted on their URLs, trust both pairs.
    let out = baton(&["devnet", "settlers", "--file", path], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("restarted 3 attester(s)") && printed.contains("\"code_hash\""),
        "{printed}"
    );
    let upgraded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut trusted = Vec::new();
    for chain in upgraded["chains"].as_array().unwrap() {
        let other = &chain["other_settlers"][0];
        assert_ne!(other["origin"], chain["origin_settler"], "{upgraded:#}");
        trusted.push(vec![
            serde_json::json!({
                "origin": chain["origin_settler"],
                "destination": chain["destination_settler"],
            }),
            other.clone(),
        ]);
    }
    let restarted = upgraded["attesters"].as_array().unwrap();
    let attester_pids: Vec<u64> = restarted
        .iter()
        .zip(attesters)
        .map(|(now, before)| {
            assert_eq!(now["url"], before["url"]);
            let pid = now["pid"].as_u64().unwrap();
            assert!(pid != before["pid"].as_u64().unwrap() && running(pid, "attester"));
            assert!(!running(before["pid"].as_u64().unwrap(), "attester"));
            pid
        })
        .collect();
    for a in restarted {
        let body = health(&a["url"]);
        let mut chains = body["chains"].as_array().unwrap().clone();
        chains.sort_by_key(|c| c["id"].as_u64());
        let lower = |v: &serde_json::Value| v.to_string().to_lowercase();
        for (chain, want) in chains.iter().zip(&trusted) {
            assert_eq!(
                lower(&chain["settlers"]),
                lower(&serde_json::json!(want)),
                "{body}"
            );
        }
    }

    let again = baton(&["devnet", "up", "--file", path], &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    let out = baton(&["devnet", "down", "--file", path], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!file.exists());
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "down waits until the nodes are gone"
    );
    assert!(
        attester_pids.iter().all(|p| !running(*p, "attester")),
        "and the attesters"
    );
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_anvil_devnet_up_says_how_to_install_it() {
    let file =
        std::env::temp_dir().join(format!("baton-devnet-missing-{}.json", std::process::id()));
    let out = baton(
        &["devnet", "up", "--file", file.to_str().unwrap()],
        &[("BATON_ANVIL", "/nonexistent/anvil")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("anvil was not found") && err.contains("npm ci"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(!file.exists());
}
