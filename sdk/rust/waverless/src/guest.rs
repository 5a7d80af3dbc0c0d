//! Calls that exist only inside a Waverless guest: the invocation's output,
//! body, logs and control flow, and the exports the host expects.

use std::alloc::{alloc, dealloc, Layout};
use std::sync::Once;

use crate::error::{check, Code, Error, Result};
use crate::{sys, Args, Level};

/// Appends to the invocation's output (the HTTP response body).
pub fn output(data: impl AsRef<[u8]>) -> Result<()> {
    let data = data.as_ref();
    for chunk in data.chunks(u32::MAX as usize) {
        check("output", unsafe {
            sys::output_write(chunk.as_ptr(), chunk.len() as u32)
        })?;
    }
    Ok(())
}

/// One structured log line attributed to this invocation. Logging never
/// fails the function: a line over the app's log budget is dropped.
pub fn log(level: Level, msg: impl AsRef<str>) {
    let msg = msg.as_ref();
    let len = msg.len().min(u32::MAX as usize) as u32;
    unsafe { sys::log(level as i32, msg.as_ptr(), len) };
}

/// Parks until every function this invocation triggered so far has
/// finished; `Code::Failed` if one of them failed.
pub fn wait_triggered() -> Result<()> {
    check("wait_triggered", unsafe { sys::wait_triggered() })
}

/// Suspends the invocation without holding a host thread; `Code::Timeout`
/// if its deadline comes first.
pub fn sleep_ms(ms: u32) -> Result<()> {
    check("sleep_ms", unsafe { sys::sleep_ms(ms) })
}

/// This invocation's id, as in the node's logs ("<request id>.<n>"); with
/// durable triggers a re-run of a triggered function keeps it, so it can key
/// idempotent writes.
pub fn invocation_id() -> Result<String> {
    let mut buf = vec![0u8; 64];
    loop {
        let mut len = 0u32;
        let st = unsafe { sys::invocation_id(buf.as_mut_ptr(), buf.len() as u32, &mut len) };
        if st == Code::BufferTooSmall.raw() && len as usize > buf.len() {
            buf.resize(len as usize, 0);
            continue;
        }
        check("invocation_id", st)?;
        buf.truncate(len as usize);
        return Ok(String::from_utf8_lossy(&buf).into_owned());
    }
}

/// Fills `buf` with random bytes from the host.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    let len = buf.len().min(u32::MAX as usize) as u32;
    match unsafe { sys::random_get(buf.as_mut_ptr(), len) } {
        0 => Ok(()),
        errno => Err(Error::new(
            Code::Io,
            format!("random_get: WASI errno {}", errno),
        )),
    }
}

/// Ends the invocation as failed: the request answers with the function's
/// name, `msg`, and the HTTP status of `code`. Does not return.
pub fn fail(code: Code, msg: impl AsRef<str>) -> ! {
    let msg = msg.as_ref();
    let len = msg.len().min(u32::MAX as usize) as u32;
    unsafe { sys::fail(code.raw(), msg.as_ptr(), len) }
}

/// The request body of a function declared `body: stream` in app.yaml. Other
/// functions get theirs as argument 0 and have nothing here
/// (`Code::Unavailable`).
pub mod body {
    use super::*;

    /// Reads the next bytes of the body into `buf`: the count, 0 at its end.
    /// Parks while the client is still uploading.
    pub fn read(buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Err(Error::new(Code::Invalid, "body::read: empty buffer"));
        }
        let cap = buf.len().min(u32::MAX as usize) as u32;
        let mut got = 0u32;
        check("body::read", unsafe {
            sys::body_read(buf.as_mut_ptr(), cap, &mut got)
        })?;
        Ok(got as usize)
    }

    /// Appends the next bytes (at most `max`) to `out`: false at the end.
    pub fn read_into(out: &mut Vec<u8>, max: usize) -> Result<bool> {
        let old = out.len();
        out.resize(old + max.max(1), 0);
        let got = read(&mut out[old..]);
        out.truncate(old + *got.as_ref().unwrap_or(&0));
        Ok(got? > 0)
    }

    /// The whole body (waits for the upload to finish; read piece by piece
    /// with [`read`] to overlap work with it).
    pub fn read_all() -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while read_into(&mut out, 1 << 20)? {}
        Ok(out)
    }
}

// --- exports the host calls ------------------------------------------------

// wl_alloc hands out blocks the guest frees by address only (WL_FUNCTION's
// contract), so each block remembers its size in an 8-byte header.
const HEADER: usize = 8;

/// The host copies an invocation's arguments into a block from here.
#[no_mangle]
pub extern "C" fn wl_alloc(size: u32) -> u32 {
    let total = size as usize + HEADER;
    let layout = match Layout::from_size_align(total, HEADER) {
        Ok(l) => l,
        Err(_) => return 0,
    };
    unsafe {
        let p = alloc(layout);
        if p.is_null() {
            return 0;
        }
        (p as *mut usize).write(total);
        p.add(HEADER) as usize as u32
    }
}

/// Frees a block from [`wl_alloc`]; 0 is ignored.
#[no_mangle]
pub extern "C" fn wl_free(ptr: u32) {
    if ptr == 0 {
        return;
    }
    unsafe {
        let p = (ptr as usize as *mut u8).sub(HEADER);
        let total = (p as *const usize).read();
        dealloc(p, Layout::from_size_align_unchecked(total, HEADER));
    }
}

/// What [`export!`](crate::export) expands to: runs `f` on the host's
/// arguments, turns an error into a failed invocation, frees the arguments.
#[doc(hidden)]
pub fn __invoke(argv: u32, argc: u32, f: fn(&Args) -> Result<()>) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // A panic (with panic = "abort", a trap) would fail the invocation
        // with "unreachable"; failing it with the panic's own message names
        // the bug. Code::Failed answers 500.
        std::panic::set_hook(Box::new(|info| {
            let msg = info.to_string();
            log(Level::Error, &msg);
            fail(Code::Failed, msg)
        }));
    });
    let result = {
        let args = unsafe { Args::from_raw(argv, argc) };
        f(&args)
    };
    wl_free(argv);
    if let Err(e) = result {
        fail(e.code, e.message);
    }
}
