//! `zerodrop drain-wait`: serve the preStop calls until SIGTERM (which comes after the app's).

use crate::cli::DrainWaitArgs;
use crate::drain::waiter::{Config, router};
use std::net::SocketAddr;
use zerodrop_core::drain::Bounds;

pub async fn drain_wait(
    args: DrainWaitArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min <= args.max && args.every > std::time::Duration::ZERO,
        "--min must not exceed --max, and --every must be above 0"
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let own = listener.local_addr()?;
    let config = Config {
        bounds: Bounds {
            min: args.min,
            quiet: args.quiet,
            max: args.max,
        },
        ports: args.ports,
        own_port: own.port(),
        fallback: args.fallback,
        every: args.every,
    };
    tracing::info!(listen = %own, "drain waiter serving");
    axum::serve(
        listener,
        router(config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
