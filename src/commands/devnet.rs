//! `baton devnet up`, `approve`, `settlers` and `down`: local anvil chains with the fixture
//! contracts deployed and seeded, and three attesters (`baton attester serve`) over them, left
//! running and described in a devnet file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baton_adapters::devnet::{Devnet, DevnetFile, stop_detached, stop_processes};

/// `baton devnet up`: starts `chains` anvil nodes, deploys and seeds the contracts, and writes
/// the devnet file.
pub(crate) fn up(chains: usize, block_time: Option<u64>, file: &Path) -> Result<ExitCode> {
    if !(1..=8).contains(&chains) {
        bail!("--chains must be between 1 and 8, not {chains}");
    }
    if file.exists() {
        bail!(
            "{} exists: a devnet is already up; run `baton devnet down` first",
            file.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let devnet = runtime.block_on(Devnet::start_detached(chains, block_time))?;
    let mut description = devnet.file();
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write = |description: &DevnetFile| -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = serde_json::to_string_pretty(description)?;
        std::fs::write(file, text + "\n").with_context(|| format!("writing {}", file.display()))
    };
    // The attesters read the chains from the file: it is written first, then again with them.
    let started = write(&description)
        .and_then(|()| runtime.block_on(crate::attesters::spawn(file, &dir.join("attesters"))));
    match started {
        Ok(spawned) => {
            description.attesters = spawned.detach();
            if let Err(e) = write(&description) {
                down_processes(&description);
                return Err(e);
            }
        }
        Err(e) => {
            down_processes(&description);
            let _ = std::fs::remove_file(file);
            return Err(e);
        }
    }
    for c in &description.chains {
        println!(
            "chain {} at {}: origin settler {}, destination settler {}",
            c.chain_id, c.rpc_url, c.origin_settler, c.destination_settler
        );
    }
    for a in &description.attesters {
        println!("attester {} at {}", a.address, a.url);
    }
    println!(
        "devnet up; described in {}; stop it with `baton devnet down`",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `baton devnet approve`: lets each chain's origin settler pull every test token of dev
/// account `account`.
pub(crate) async fn approve(account: usize, file: &Path) -> Result<ExitCode> {
    let description = crate::config::read_devnet_file(file)?;
    let key = baton_adapters::devnet::DEV_KEYS
        .get(account)
        .with_context(|| format!("there is no dev account {account} (0 to 9)"))?;
    let signer: alloy::signers::local::PrivateKeySigner = key.parse()?;
    for chain in &description.chains {
        let adapter = baton_adapters::evm::EvmAdapter::new(
            baton_adapters::evm::EvmConfig::new(
                baton_planner::ChainId(chain.chain_id),
                chain.rpc_url.parse()?,
                baton_adapters::abi::Settlers {
                    origin: chain.origin_settler,
                    destination: chain.destination_settler,
                },
            ),
            signer.clone(),
        )?;
        // Every origin settler of the chain: an upgrade's too.
        for settlers in chain.trusted_settlers() {
            let pairs: Vec<_> = chain
                .tokens
                .values()
                .map(|t| (*t, settlers.origin))
                .collect();
            let sent = baton_engine::liquidity::approve(&adapter, &pairs).await?;
            println!(
                "chain {}: {} may pull every test token of {} ({sent} approval(s) sent)",
                chain.chain_id,
                settlers.origin,
                signer.address()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `baton devnet settlers`: deploys another settler pair on each chain, records it in the devnet
/// file, restarts the devnet's attesters (they trust every pair the file names), and prints the
/// new pairs as a bundle names them.
pub(crate) async fn settlers(file: &Path) -> Result<ExitCode> {
    use alloy::providers::Provider;
    let mut description = crate::config::read_devnet_file(file)?;
    let mut named = Vec::new();
    for chain in &mut description.chains {
        let url: alloy::transports::http::reqwest::Url = chain.rpc_url.parse()?;
        let pair = baton_adapters::devnet::deploy_settler_pair(&url)
            .await
            .with_context(|| format!("chain {}: deploying settlers", chain.chain_id))?;
        chain.other_settlers.push(pair);
        let provider = alloy::providers::ProviderBuilder::new().connect_http(url);
        let mut entry = serde_json::Map::new();
        entry.insert("id".into(), chain.chain_id.into());
        for (field, address) in [
            ("origin_settler", pair.origin),
            ("destination_settler", pair.destination),
        ] {
            let code = provider.get_code_at(address).await?;
            entry.insert(
                field.into(),
                serde_json::json!({
                    "address": address,
                    "code_hash": alloy::primitives::keccak256(&code),
                }),
            );
        }
        named.push(serde_json::Value::Object(entry));
    }
    let write = |description: &DevnetFile| -> Result<()> {
        let text = serde_json::to_string_pretty(description)?;
        std::fs::write(file, text + "\n").with_context(|| format!("writing {}", file.display()))
    };
    write(&description)?;
    if !description.attesters.is_empty() {
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("attesters");
        let restarted = crate::attesters::restart(&description.attesters, &dir).await?;
        description.attesters = restarted.detach();
        write(&description)?;
        println!(
            "restarted {} attester(s): they trust every settler pair in {}",
            description.attesters.len(),
            file.display()
        );
    }
    println!("the new settlers, as a configuration bundle's chains name them:");
    println!("{}", serde_json::to_string_pretty(&named)?);
    Ok(ExitCode::SUCCESS)
}

/// `baton devnet down`: stops the nodes named in the devnet file and removes it.
pub(crate) fn down(file: &Path) -> Result<ExitCode> {
    let description = crate::config::read_devnet_file(file)?;
    down_processes(&description);
    std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
    println!(
        "devnet down: stopped {} chain(s) and {} attester(s)",
        description.chains.len(),
        description.attesters.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Stops the attesters and the nodes a devnet file names.
fn down_processes(description: &DevnetFile) {
    stop_processes(
        description.attesters.iter().filter_map(|a| a.pid),
        "attester",
    );
    stop_detached(description.chains.iter().filter_map(|c| c.pid));
}
