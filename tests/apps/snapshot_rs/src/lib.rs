//! wl_init in Rust (tests/integration/snapshot_test.cpp): it fills a table
//! every instance starts with; each call reports it, then empties it.
use waverless::{Args, Result};

static mut TABLE: Vec<u32> = Vec::new();
static mut CALLS: u32 = 0;

#[no_mangle]
pub extern "C" fn wl_init() {
    unsafe { TABLE = (1..=1000).collect(); }
}

fn probe(_args: &Args) -> Result<()> {
    unsafe {
        CALLS += 1;
        let s: u32 = TABLE.iter().sum();
        let out = format!("len={} sum={} calls={}", TABLE.len(), s, CALLS);
        TABLE.clear();
        waverless::output(out)
    }
}

fn probe_fresh(args: &Args) -> Result<()> { probe(args) }

waverless::export!(probe, probe_fresh);
