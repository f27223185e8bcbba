//! `zerodrop load`: steady load to one target until a stop, a JSON summary at the end.

use super::setup::shutdown_signal;

/// `zerodrop load`: runs the plan until one of its stops, prints the summary on stdout.
pub async fn load(args: crate::cli::LoadArgs) -> anyhow::Result<()> {
    use crate::verify::load::{Plan, run_reporting};
    let plan = Plan {
        target: args.target,
        path: args.path,
        host: args.host,
        method: args.method,
        rate: args.rate,
        keepalive: args.keepalive,
        connections: usize::from(args.connections),
        timeout: args.timeout,
    };
    let (closed_tx, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    if args.until_stdin_closes {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = closed_tx.send(());
        });
    }
    let duration = args.duration;
    let stop = async move {
        let stdin = async {
            match stdin_closed.await {
                Ok(()) => (),
                Err(_) => std::future::pending().await,
            }
        };
        let limit = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown_signal() => (),
            () = stdin => (),
            () = limit => (),
        }
    };
    // Progress lines are {"progress": {...}}; the last line is the summary.
    let reporter = args.report_every.map(|every| {
        let print: Box<dyn FnMut(crate::verify::load::Progress) + Send> = Box::new(|p| {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({ "progress": p })) {
                println!("{line}");
            }
        });
        (every, print)
    });
    let summary = run_reporting(plan, stop, reporter).await;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
