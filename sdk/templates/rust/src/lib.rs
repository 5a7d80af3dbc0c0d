//! @APP_NAME@: a Waverless function in Rust (docs/languages.md).
//!   waverless deploy .                      builds (cargo) and deploys
//!   curl -d you localhost:2501/@APP_NAME@   hello you from Rust

use waverless::{Args, Level, Result};

fn hello(args: &Args) -> Result<()> {
    let name = match args.str(0) {
        Some(s) if !s.trim().is_empty() => s.trim(),
        _ => "world",
    };
    waverless::log(Level::Info, format!("greeting {}", name));
    waverless::output(format!("hello {} from Rust", name))
}

waverless::export!(hello);
