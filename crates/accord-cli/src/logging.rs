//! Log output: text for people, JSON for pipelines; `RUST_LOG` overrides
//! the level and `ACCORD_LOG_FORMAT` the format.

use accord_gateway::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(config: &LogConfig) {
    // `ACCORD_LOG_FORMAT=json|text` overrides the file (and the demo's
    // built-in text), so a container can ask for JSON without a config edit.
    let format = match std::env::var("ACCORD_LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ => config.format,
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
