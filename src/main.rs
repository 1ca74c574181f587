//! `baton`: the command line. Wiring only: [`cli`] is what clap parses, [`commands`] what each
//! command does; the work lives in the crates.

use std::process::ExitCode;

use anyhow::Result;
use baton_planner::PlannerConfig;
use clap::Parser;

use cli::{AuditAction, Cli, Command, DevnetAction};

mod attesters;
mod cli;
mod client;
mod commands;
mod config;
mod demo;
mod runtime;
mod server;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Plan {
            intents,
            snapshot,
            max_hops,
            slippage_bps,
        } => {
            let config = PlannerConfig {
                max_hops,
                slippage_bps,
                ..PlannerConfig::default()
            };
            commands::plan::plan_files(&intents, &snapshot, &config)
        }
        Command::Devnet {
            action:
                DevnetAction::Up {
                    chains,
                    block_time,
                    file,
                },
        } => commands::devnet::up(chains, block_time, &file),
        Command::Devnet {
            action: DevnetAction::Down { file },
        } => commands::devnet::down(&file),
        Command::Devnet {
            action: DevnetAction::Approve { account, file },
        } => runtime()?.block_on(commands::devnet::approve(account, &file)),
        Command::Devnet {
            action: DevnetAction::Settlers { file },
        } => runtime()?.block_on(commands::devnet::settlers(&file)),
        Command::Audit {
            action: AuditAction::Verify { saga, database },
        } => commands::audit::verify(&database, saga.as_deref()),
        Command::Serve { config } => commands::serve::serve(&config),
        Command::Attester {
            action: cli::AttesterAction::Serve { config },
        } => commands::attester::serve(&config),
        Command::Demo { intents } => {
            logging("warn");
            let ok = runtime()?.block_on(demo::run(&intents))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Quote { file, server } => {
            runtime()?.block_on(commands::intents::quote(&file, &server))
        }
        Command::Submit {
            file,
            sign_with_dev_key,
            idempotency_key,
            server,
        } => runtime()?.block_on(commands::intents::submit(
            &file,
            sign_with_dev_key,
            idempotency_key.as_deref(),
            &server,
        )),
        Command::Replay {
            saga,
            json,
            with,
            resume: true,
            server,
            api_key,
            ..
        } => runtime()?.block_on(commands::replay::resume(
            &saga,
            &server,
            api_key.as_deref(),
            with.as_deref(),
            json,
        )),
        Command::Replay {
            saga,
            database,
            devnet,
            rpcs,
            json,
            with,
            ..
        } => runtime()?.block_on(commands::replay::replay(
            &saga,
            &database,
            &devnet,
            &rpcs,
            json,
            with.as_deref(),
        )),
        Command::Bench { bench } => baton_bench::run(bench),
        Command::Status { id, follow, server } => {
            runtime()?.block_on(commands::intents::status(&server, &id, follow))
        }
        Command::Config { action } => runtime()?.block_on(commands::config::run(action)),
        Command::Sagas { state, server } => {
            runtime()?.block_on(commands::intents::sagas(state.as_deref(), &server))
        }
    }
}

/// A multi-threaded runtime for a command that needs one.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logs to stderr at `default` level, or as `RUST_LOG` says.
fn logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
