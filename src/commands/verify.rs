//! `zerodrop verify`: flags to options, a progress line on a terminal, the report, the exit code.

use super::setup::shutdown_signal;
use crate::cli::measure::VerifyAction;
use crate::cli::{VerifyArgs, VerifyOutput};
use crate::verify::options::{Action, Options, VerifyError};
use crate::verify::preflight::Wanted;
use crate::verify::run;
use std::io::IsTerminal as _;

/// Returns the exit code: 0 nothing failed, 1 something did, 2 verify could not run.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let client = crate::cluster::client(args.kubeconfig.as_deref()).await?;
    let repeat = args.repetitions();
    let opts = Options {
        target: args.target,
        namespace: args.namespace,
        wanted: Wanted {
            service: args.service,
            port: args.port,
            path: args.path,
            scale_down: false,
        },
        method: args.method,
        rate: args.rate,
        keepalive: args.keepalive,
        connections: args.connections,
        timeout: args.timeout,
        actions: args
            .actions
            .iter()
            .map(|a| match a {
                VerifyAction::Restart => Action::Restart,
                VerifyAction::ScaleDown => Action::ScaleDown,
            })
            .collect(),
        repeat,
        image: args.image,
        zerodrop_namespace: args.zerodrop_namespace,
        settle: args.settle,
        steady: args.steady,
        rollout_limit: args.rollout_timeout,
        sweep: args.sweep_sleep,
    };
    // A progress line only for a person: JSON output is the result and nothing else.
    let bar = (args.output == VerifyOutput::Table && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let status = |line: &str| {
        if let Some(bar) = &bar {
            bar.set_message(line.to_owned());
        }
    };
    let result = run::run(&client, &opts, shutdown_signal, &status).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(report) => {
            match args.output {
                VerifyOutput::Table => print!("{}", report.table()),
                VerifyOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            Ok(if report.failed() == 0 { 0 } else { 1 })
        }
        Err(e) => {
            let why = match &e {
                VerifyError::Refused(_) => "refused",
                _ => "could not run",
            };
            match args.output {
                VerifyOutput::Json => println!(
                    "{}",
                    serde_json::json!({"error": e.to_string(), "kind": why})
                ),
                VerifyOutput::Table => eprintln!("verify {why}: {e}"),
            }
            Ok(2)
        }
    }
}
