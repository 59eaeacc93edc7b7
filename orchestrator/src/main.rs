//! The `fleet` binary: parses the command line, runs the subcommand, maps the outcome to an
//! exit code (0 success, 1 a check failed, 2 an infrastructure or usage error).

use std::process::ExitCode;

use clap::Parser;
use fleet_orchestrator::cli::{Cli, Command, ConfigAction};
use fleet_orchestrator::commands::launch_fleet::FleetOptions;
use fleet_orchestrator::commands::{self, Ctx};
use fleet_orchestrator::engine::Interrupted;
use fleet_orchestrator::{closed_stdout, stack_lock};

/// A check did not hold (e.g. a service is not ready).
const EXIT_ASSERTION: u8 = 1;
/// Infrastructure or usage error.
const EXIT_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    closed_stdout::exit_quietly_when_closed();
    let cli = Cli::parse();
    fleet_common::logging::init(cli.verbose);
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_ASSERTION),
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<Interrupted>() {
                Some(Interrupted(signal)) => ExitCode::from(signal.exit_code()),
                None => ExitCode::from(EXIT_ERROR),
            }
        }
    }
}

/// The subcommand's name when it changes the stack (and so must run alone on it).
fn changes_the_stack(command: &Command) -> Option<&'static str> {
    match command {
        Command::Up { .. } => Some("up"),
        Command::LaunchInfra { .. } => Some("launch-infra"),
        Command::LaunchFleet { .. } => Some("launch-fleet"),
        Command::Teardown { .. } => Some("teardown"),
        _ => None,
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let ctx = Ctx::load(&cli.config, cli.progress)?;
    // Held until the command ends: one run at a time changes a stack.
    let _lock = changes_the_stack(&cli.command)
        .map(|name| stack_lock::acquire(&ctx.paths.cache, ctx.stack(), name))
        .transpose()?;
    match cli.command {
        Command::Up {
            num_vehicles,
            per_container,
            keep_on_failure,
        } => commands::up::run(&ctx, num_vehicles, per_container, keep_on_failure).await?,
        Command::Build => commands::build::run(&ctx).await?,
        Command::LaunchInfra { keep_on_failure } => {
            commands::launch_infra::run(&ctx, keep_on_failure).await?;
        }
        Command::LaunchFleet {
            num_vehicles,
            per_container,
            legacy_form,
            duration,
        } => {
            let options = FleetOptions {
                legacy_form,
                duration,
            };
            commands::launch_fleet::run_with(&ctx, num_vehicles, per_container, options).await?;
        }
        Command::Teardown { fleet_only } => {
            commands::teardown::run(&ctx, fleet_only).await?;
        }
        Command::Status { json } => return commands::status::run(&ctx, json).await,
        Command::Verify { probes, timeout } => {
            return commands::verify::run(&ctx, probes, timeout).await;
        }
        Command::Config { action } => match action {
            ConfigAction::Get { json } => commands::config::get(&ctx, json).await?,
            ConfigAction::Set { assignments } => {
                commands::config::set(&ctx, &assignments).await?;
            }
        },
        Command::Logs {
            service,
            follow,
            tail,
        } => commands::logs::run(&ctx, &service, follow, tail).await?,
    }
    Ok(true)
}
