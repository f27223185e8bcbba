//! The `zerodrop` binary: parse flags, set up logging, run the command.

use clap::Parser;
use std::io::IsTerminal as _;
use zerodrop::cli::{CertsCommand, Cli, Command, LogFormat, PolicyCommand};

// The request path allocates many small short-lived values; mimalloc halves their cost
// against glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The server writes one line per admission: a background writer keeps the write(2) off the
    // request path, and under overload drops lines rather than delaying admissions.
    let (writer, flush_on_exit) = match cli.command {
        Command::Serve(_) => tracing_appender::non_blocking(std::io::stderr()),
        _ => tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::stderr()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)?;
    // Colour only for a person at a terminal: a file or a pipe gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(writer);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.init(),
    }
    // kube and our TLS both use rustls with ring; make it the process default explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Evaluation of large bodies has its own bounded slots; this caps the rest (file reads,
    // DNS) so no path can pile up threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(zerodrop::commands::serve(
            *args,
            zerodrop::commands::shutdown_signal(),
        )),
        Command::Audit(args) => {
            let code = runtime
                .block_on(zerodrop::commands::audit(args))
                .unwrap_or_else(|e| {
                    eprintln!("error: {e:#}");
                    2
                });
            drop(flush_on_exit);
            std::process::exit(code)
        }
        Command::Certs(CertsCommand::Generate(args)) => zerodrop::commands::certs_generate(&args),
        Command::Load(args) => runtime.block_on(zerodrop::commands::load(args)),
        Command::Policy(PolicyCommand::Export(args)) => zerodrop::commands::policy_export(&args),
        Command::DrainWait(args) => runtime.block_on(zerodrop::commands::drain_wait(
            args,
            zerodrop::commands::shutdown_signal(),
        )),
        Command::Verify(args) => {
            let code = runtime
                .block_on(zerodrop::commands::verify(*args))
                .unwrap_or_else(|e| {
                    eprintln!("error: {e:#}");
                    2
                });
            drop(flush_on_exit);
            std::process::exit(code)
        }
    }
}
