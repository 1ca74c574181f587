//! `baton serve`: the REST API on the configured chains and saga log, until ctrl-c.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::{config, server};

/// Serves the REST API as `config` says until ctrl-c.
pub(crate) fn serve(config: &Path) -> Result<ExitCode> {
    crate::logging("info");
    let resolved = config::Config::load(config)?.resolve()?;
    crate::runtime()?.block_on(async {
        let mut running = server::start(resolved).await?;
        println!("baton serving on http://{}", running.addr);
        tokio::select! {
            r = running.wait() => r?,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping");
                running.stop().await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
