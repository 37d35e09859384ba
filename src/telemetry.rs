//! Logging: tracing to standard error, as text or JSON, filtered by `RUST_LOG` or the
//! configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber; call once, from `main`.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("callsign=info,tower_http=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let writer = std::io::stderr;
    let ansi = std::io::stderr().is_terminal();
    // A subscriber may already be installed (for instance by an embedding program).
    let _ = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .try_init(),
    };
}
