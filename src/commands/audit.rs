//! `baton audit verify`: the saga log's hash chains checked.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baton_engine::{Db, SagaId, SagaLog};

/// `baton audit verify`: recomputes the hash chains of the saga log (or of one saga) and reports
/// the first broken link; fails when the log has been altered.
pub(crate) fn verify(database: &str, saga: Option<&str>) -> Result<ExitCode> {
    if let Some(path) = database.strip_prefix("sqlite://")
        && !Path::new(path).exists()
    {
        bail!("no saga log at {path} (nothing has run against this database yet)");
    }
    let saga = match saga {
        Some(id) => Some(SagaId(id.parse().with_context(|| {
            format!("{id:?} is not a saga id (0x followed by 64 hex digits)")
        })?)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let log = SagaLog::new(Db::connect(database).await?);
        let report = log.verify(saga).await?;
        match report.broken {
            None => {
                println!(
                    "saga log intact: {} saga(s), {} event(s), every hash chain checks",
                    report.sagas, report.events
                );
                Ok(ExitCode::SUCCESS)
            }
            Some(b) => {
                println!(
                    "saga log altered: saga {} event {}: {} ({} saga(s) and {} event(s) checked)",
                    b.saga, b.seq, b.reason, report.sagas, report.events
                );
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
