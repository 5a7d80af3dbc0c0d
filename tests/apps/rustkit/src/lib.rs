//! rustkit: one function per binding of the Rust SDK, each answering with
//! what it observed so languages_test can compare it to what the host did.

use waverless::{body, files, kv, Args, Code, Error, Result};

fn text(v: &Option<Vec<u8>>) -> String {
    match v {
        Some(b) => format!("'{}'", String::from_utf8_lossy(b)),
        None => "none".to_string(),
    }
}

/// batch, scan, get (missing, empty, present), delete.
fn kvops(_: &Args) -> Result<()> {
    let mut b = kv::Batch::new();
    b.set("rk_b", "two")?.set("rk_a", "one")?.set("rk_empty", "")?;
    b.commit()?;
    kv::set("rk_c", "three")?;
    let scanned: Vec<String> = kv::scan("rk_", 10)?
        .into_iter()
        .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v)))
        .collect();
    // A value larger than the SDK's first read buffer takes the retry path.
    let big = "x".repeat(5000);
    kv::set("rk_big", &big)?;
    let big_ok = kv::get("rk_big")?.map(|v| v == big.as_bytes()).unwrap_or(false);
    kv::delete("rk_c")?;
    kv::delete("rk_never_set")?;
    waverless::output(format!(
        "scan=[{}] missing={} empty={} a={} big={} deleted={}",
        scanned.join(","),
        text(&kv::get("rk_missing")?),
        text(&kv::get("rk_empty")?),
        text(&kv::get("rk_a")?),
        big_ok,
        text(&kv::get("rk_c")?)
    ))
}

fn files(_: &Args) -> Result<()> {
    let data = files::read("data.txt")?;
    let f = files::File::open("data.txt")?;
    let mut head = [0u8; 7];
    let n = f.read_at(0, &mut head)?;
    let outside = files::read("../app.yaml").map(|_| "read".to_string()).unwrap_or_else(|e| {
        format!("{:?}", e.code)
    });
    waverless::output(format!(
        "size={} head='{}' all='{}' outside={}",
        f.size()?,
        String::from_utf8_lossy(&head[..n]),
        String::from_utf8_lossy(&data).trim_end(),
        outside
    ))
}

/// Fails with the code in the body, as an Err.
fn failwith(args: &Args) -> Result<()> {
    let raw: i32 = args.str(0).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    Err(Error::new(Code::from_raw(raw), format!("rustkit failed with code {} on purpose", raw)))
}

fn panics(_: &Args) -> Result<()> {
    let v: Vec<u32> = Vec::new();
    if v.is_empty() {
        panic!("rustkit panicked on purpose");
    }
    Ok(())
}

/// A set outside the function's kvs list: the Permission error propagates.
fn denied(_: &Args) -> Result<()> {
    kv::set("rk_x", "no")
}

/// A streamed body, read in small pieces, back as the output.
fn echo(_: &Args) -> Result<()> {
    let mut all = Vec::new();
    while body::read_into(&mut all, 1000)? {}
    waverless::output(&all)
}

/// cas (create-only, a conflict, a match, a stale expectation), incr, and
/// the invocation id, which keys this call's own keys.
fn atomics(_: &Args) -> Result<()> {
    let id = waverless::invocation_id()?;
    let outcome = |r: Result<()>| match r {
        Ok(()) => "stored".to_string(),
        Err(e) => format!("{:?}", e.code),
    };
    let key = format!("rk_cas_{}", id);
    let cas = [
        outcome(kv::cas(&key, None, "v1")),
        outcome(kv::cas(&key, None, "v2")),
        outcome(kv::cas(&key, Some(b"v1"), "v3")),
        outcome(kv::cas(&key, Some(b"v1"), "v4")),
    ];
    let ctr = format!("rk_ctr_{}", id);
    let (a, b) = (kv::incr(&ctr, 5)?, kv::incr(&ctr, -7)?);
    let bad = kv::incr(&key, 1).map(|v| v.to_string()).unwrap_or_else(|e| format!("{:?}", e.code));
    waverless::output(format!(
        "cas={} value={} incr={},{} stored={} bad={} id={}",
        cas.join(","),
        text(&kv::get(&key)?),
        a,
        b,
        text(&kv::get(&ctr)?),
        bad,
        id
    ))
}

waverless::export!(kvops, files, failwith, panics, denied, echo, atomics);
