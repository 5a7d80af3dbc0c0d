//! {{app}}: greets the name in the request body and counts the calls per
//! name in the KV store (key calls_<name>, allowed by app.yaml's kvs list).
//!   waverless deploy .                    builds (cargo) and deploys
//!   curl -d you localhost:2501/{{app}}    hello you (call 1)
//! The Rust SDK: docs/languages.md.

use waverless::{kv, Args, Code, Error, Result};

fn greet(args: &Args) -> Result<()> {
    let name = match args.str(0).map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => "world",
    };
    // A key segment is [A-Za-z0-9._-]: anything else would be refused.
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)) {
        return Err(Error::new(Code::Invalid, "a name is letters, digits, '.', '_' or '-'"));
    }
    let key = format!("calls_{}", name);
    let calls = match kv::get(&key)? {
        Some(v) => String::from_utf8_lossy(&v).parse::<u64>().unwrap_or(0) + 1,
        None => 1,
    };
    kv::set(&key, calls.to_string())?;
    waverless::output(format!("hello {} (call {})", name, calls))
}

waverless::export!(greet);
