//! The commands that ask a running server over REST: `quote`, `submit` and `status` follow an
//! intent as a dApp does; `sagas` lists sagas for an operator.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use baton_api::wallet::sign_quote;

use crate::cli::ServerArgs;
use crate::client;

/// `baton quote FILE`: the quote of an intent file, printed as JSON.
pub(crate) async fn quote(file: &Path, server: &ServerArgs) -> Result<ExitCode> {
    let intent = client::intent_request(read_json(file)?);
    let quote = server.client()?.quote(&intent).await?;
    println!("{}", serde_json::to_string_pretty(&quote)?);
    Ok(ExitCode::SUCCESS)
}

/// `baton submit FILE`: a signed submission file, or an intent file quoted and signed with dev key
/// `sign_with_dev_key`, submitted; prints the intent id.
pub(crate) async fn submit(
    file: &Path,
    sign_with_dev_key: Option<usize>,
    idempotency_key: Option<&str>,
    server: &ServerArgs,
) -> Result<ExitCode> {
    let client = server.client()?;
    let body = read_json(file)?;
    let signed = match sign_with_dev_key {
        Some(k) => {
            let key = baton_adapters::devnet::DEV_KEYS
                .get(k)
                .with_context(|| format!("there is no dev key {k} (0 to 9)"))?;
            let quote = client.quote(&client::intent_request(body)).await?;
            sign_quote(&quote, &key.parse()?)?
        }
        None => body,
    };
    let accepted = client.submit(&signed, idempotency_key).await?;
    println!("{}", accepted["intent_id"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// `baton status ID [--follow]`: the intent's status and steps, and each change until the outcome
/// when following; fails when the intent failed.
pub(crate) async fn status(server: &ServerArgs, id: &str, follow: bool) -> Result<ExitCode> {
    let client = server.client()?;
    let mut shown: Vec<String> = Vec::new();
    loop {
        let view = client.status(id).await?;
        let mut lines = vec![format!(
            "intent {id}: {}",
            view["status"].as_str().unwrap_or("?")
        )];
        lines.extend(client::describe_steps(&view, true));
        if lines != shown {
            for line in &lines {
                println!("{line}");
            }
            shown = lines;
        }
        if let Some(word) = client::outcome(&view) {
            println!("outcome: {word}");
            if let Some(reason) = view["outcome"]["reason"].as_str() {
                println!("reason: {reason}");
            }
            return Ok(if word == "failed" {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `baton sagas [--state S]`: one line per saga (id, state, outcome).
pub(crate) async fn sagas(state: Option<&str>, server: &ServerArgs) -> Result<ExitCode> {
    let sagas = server.client()?.sagas(state).await?;
    for s in sagas.as_array().into_iter().flatten() {
        println!(
            "{} {:<12} {}",
            s["id"].as_str().unwrap_or_default(),
            s["state"].as_str().unwrap_or_default(),
            s["outcome"]["outcome"].as_str().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}
