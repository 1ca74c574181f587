//! `baton config …`: configuration versions through their lifecycle over the REST API
//! (`/v1/operator/config/…`, `/v1/operator/instances`). Approving signs the version's approval
//! message locally, after checking that the bundle the server shows hashes to the version's id.

use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::{B256, keccak256};
use alloy::signers::SignerSync;
use anyhow::{Context, Result, bail};
use baton_engine::changes::{approval_message, canonical};
use serde_json::{Value, json};

use crate::cli::{ConfigAction, ServerArgs};
use crate::client::Client;
use crate::config::{SecretRef, signer};

const VERSIONS: &str = "/v1/operator/config/versions";

/// Runs one `baton config` action.
pub(crate) async fn run(action: ConfigAction) -> Result<ExitCode> {
    match action {
        ConfigAction::Status { server } => status(&server.client()?).await,
        ConfigAction::Show {
            version,
            bundle,
            server,
        } => show(&server.client()?, version.as_deref(), bundle).await,
        ConfigAction::Propose { file, wait, server } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let bundle: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            propose(&server.client()?, &bundle, wait).await
        }
        ConfigAction::Approve {
            version,
            key_file,
            key_env,
            server,
        } => {
            let key = match key_file {
                Some(file) => Some(SecretRef {
                    env: None,
                    file: Some(file),
                }),
                None => std::env::var_os(&key_env).map(|_| SecretRef {
                    env: Some(key_env),
                    file: None,
                }),
            };
            approve(&server, &version, key).await
        }
        ConfigAction::Schedule {
            version,
            at,
            in_secs,
            at_block,
            server,
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let at = at.or(in_secs.map(|s| now + s));
            let body = match at_block {
                Some(target) => {
                    let parsed = target
                        .split_once(':')
                        .and_then(|(c, b)| Some((c.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
                    let Some((chain, block)) = parsed else {
                        bail!("--at-block takes CHAIN:BLOCK (two decimal numbers), not {target:?}");
                    };
                    json!({ "at_block": { "chain": chain, "block": block } })
                }
                None => json!({ "at_ms": at.map(|s| s.saturating_mul(1000)) }),
            };
            let id = resolve(&server.client()?, &version).await?;
            let detail = server
                .client()?
                .post(&format!("{VERSIONS}/{id}/schedule"), &body)
                .await?;
            print_version(&detail);
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::Reject {
            version,
            reason,
            server,
        } => with_reason(&server, &version, "reject", &reason).await,
        ConfigAction::Override {
            version,
            reason,
            server,
        } => with_reason(&server, &version, "override", &reason).await,
        ConfigAction::Rollback { to, server } => {
            let client = server.client()?;
            let to = match to {
                Some(v) => Some(resolve(&client, &v).await?),
                None => None,
            };
            let detail = client
                .post("/v1/operator/config/rollback", &json!({ "to": to }))
                .await?;
            print_version(&detail);
            println!("validate, approve and schedule it as any change");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The id of `version`: an id, a number, or `active`.
async fn resolve(client: &Client, version: &str) -> Result<String> {
    let versions = client.get(VERSIONS).await?;
    let found = versions.as_array().into_iter().flatten().find(|v| {
        v["id"].as_str() == Some(version)
            || v["number"].as_u64().map(|n| n.to_string()).as_deref() == Some(version)
            || (version == "active" && v["state"] == "active")
    });
    match found.and_then(|v| v["id"].as_str()) {
        Some(id) => Ok(id.to_owned()),
        None => bail!("no configuration version {version:?}"),
    }
}

/// One line for a version.
fn line(v: &Value) -> String {
    let at = match (v["activate_at_ms"].as_i64(), &v["activate_at_block"]) {
        (Some(ms), _) => format!(" activates at {ms} ms"),
        (None, b) if b.is_object() => {
            format!(" activates at block {} of chain {}", b["block"], b["chain"])
        }
        _ => String::new(),
    };
    format!(
        "version {} {} {:<11} by {}{at}",
        v["number"],
        v["id"].as_str().unwrap_or_default(),
        v["state"].as_str().unwrap_or_default(),
        v["proposed_by"].as_str().unwrap_or_default(),
    )
}

/// `POST …/{version}/{action}` with `{"reason"}`; prints the version.
async fn with_reason(
    server: &ServerArgs,
    version: &str,
    action: &str,
    reason: &str,
) -> Result<ExitCode> {
    let client = server.client()?;
    let id = resolve(&client, version).await?;
    let detail = client
        .post(
            &format!("{VERSIONS}/{id}/{action}"),
            &json!({ "reason": reason }),
        )
        .await?;
    print_version(&detail);
    Ok(ExitCode::SUCCESS)
}

/// A version's detail: its line, its record, its approvals.
fn print_version(detail: &Value) {
    println!("{}", line(&detail["version"]));
    for t in detail["history"].as_array().into_iter().flatten() {
        println!(
            "  {:>4} {} → {} by {}: {}",
            t["seq"],
            t["from"].as_str().unwrap_or("-"),
            t["to"].as_str().unwrap_or_default(),
            t["by"].as_str().unwrap_or_default(),
            t["detail"].as_str().unwrap_or_default()
        );
    }
    let shadow = &detail["shadow"];
    if shadow.is_object() {
        match shadow["finished_ms"].as_i64() {
            None => println!(
                "  shadow run: under way on {}",
                shadow["by_instance"].as_str().unwrap_or_default()
            ),
            Some(_) => println!(
                "  shadow run: {} saga(s) re-run, {} ending worse",
                shadow["sagas"], shadow["regressions"]
            ),
        }
        let sagas = shadow["report"]["sagas"].as_array().into_iter().flatten();
        for s in sagas.filter(|s| s["regression"] == true) {
            println!(
                "    saga {}: {} before, {} now: {}",
                s["saga"].as_str().unwrap_or_default(),
                s["before"].as_str().unwrap_or_default(),
                s["after"].as_str().unwrap_or("no outcome"),
                s["summary"].as_str().unwrap_or_default()
            );
        }
        if let Some(by) = shadow["overridden_by"].as_str() {
            println!(
                "    overridden by {by}: {}",
                shadow["override_reason"].as_str().unwrap_or_default()
            );
        }
    }
    let set = &detail["approved_by"];
    let approvals = detail["approvals"].as_array().map_or(0, Vec::len);
    if set["quorum"].as_u64().unwrap_or(0) > 0 {
        println!(
            "  approvals: {approvals} (quorum {} of {})",
            set["quorum"],
            set["approvers"].as_array().map_or(0, Vec::len)
        );
        for a in detail["approvals"].as_array().into_iter().flatten() {
            println!("    {}", a["approver"].as_str().unwrap_or_default());
        }
    }
}

async fn status(client: &Client) -> Result<ExitCode> {
    let versions = client.get(VERSIONS).await?;
    let versions = versions.as_array().cloned().unwrap_or_default();
    match versions.iter().find(|v| v["state"] == "active") {
        Some(active) => println!("active: {}", line(active)),
        None => println!("no version is active"),
    }
    let open = ["proposed", "validated", "approved", "scheduled"];
    for v in versions
        .iter()
        .filter(|v| open.iter().any(|s| v["state"] == *s))
    {
        println!("in progress: {}", line(v));
    }
    let instances = client.get("/v1/operator/instances").await?;
    for i in instances.as_array().into_iter().flatten() {
        let running = i["running_version"]
            .as_u64()
            .map_or_else(|| "its own file".to_owned(), |n| format!("version {n}"));
        let state = match (i["alive"].as_bool(), i["lagging"].as_bool()) {
            (Some(false), _) => "not seen lately",
            (_, Some(true)) => "lagging",
            _ => "current",
        };
        println!(
            "instance {}: runs {running}, {state}{}",
            i["instance"].as_str().unwrap_or_default(),
            i["staged"]
                .as_str()
                .map(|s| format!(", staged {s}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(client: &Client, version: Option<&str>, bundle: bool) -> Result<ExitCode> {
    let Some(version) = version else {
        for v in client.get(VERSIONS).await?.as_array().into_iter().flatten() {
            println!("{}", line(v));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let id = resolve(client, version).await?;
    let detail = client.get(&format!("{VERSIONS}/{id}")).await?;
    if bundle {
        println!("{}", serde_json::to_string_pretty(&detail["bundle"])?);
    } else {
        print_version(&detail);
    }
    Ok(ExitCode::SUCCESS)
}

async fn propose(client: &Client, bundle: &Value, wait: bool) -> Result<ExitCode> {
    let detail = client.post(VERSIONS, bundle).await?;
    let id = detail["version"]["id"]
        .as_str()
        .context("the server answered no version id")?
        .to_owned();
    if !wait {
        print_version(&detail);
        return Ok(ExitCode::SUCCESS);
    }
    let started = std::time::Instant::now();
    loop {
        let detail = client.get(&format!("{VERSIONS}/{id}")).await?;
        let state = detail["version"]["state"].as_str().unwrap_or_default();
        if state != "proposed" || started.elapsed() > Duration::from_secs(60) {
            print_version(&detail);
            return Ok(if state == "rejected" {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn approve(server: &ServerArgs, version: &str, key: Option<SecretRef>) -> Result<ExitCode> {
    let client = server.client()?;
    let id = resolve(&client, version).await?;
    let detail = client.get(&format!("{VERSIONS}/{id}")).await?;
    let body = match key {
        Some(key) => {
            // Sign only what the bundle shown is: its canonical JSON must hash to the id.
            let id: B256 = id.parse().context("the server answered a malformed id")?;
            if keccak256(canonical(&detail["bundle"]).as_bytes()) != id {
                bail!("the bundle the server shows does not hash to version {id}; not signing");
            }
            let signer = signer("the approver key", &key.read("the approver key")?)?;
            let signature = signer
                .sign_message_sync(approval_message(id).as_bytes())
                .context("signing the approval")?;
            println!("approving as {}", signer.address());
            json!({ "signature": signature.to_string() })
        }
        None => json!({}),
    };
    let detail = client
        .post(&format!("{VERSIONS}/{id}/approve"), &body)
        .await?;
    print_version(&detail);
    Ok(ExitCode::SUCCESS)
}
