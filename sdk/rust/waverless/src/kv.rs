//! The app's key-value store. Which keys a function may touch, and how, is
//! its `kvs` list in app.yaml: anything else is `Code::Permission`.

use crate::error::{check, Error, Result};
use crate::{packed, sys};

/// Sizes of the first read buffer: most values are small, and a larger one
/// costs a second host call (the host keeps the value for it).
const FIRST_READ: usize = 256;

/// Calls `f(buf, cap, &mut len)` until the buffer is large enough.
fn read_grown(call: &str, mut f: impl FnMut(*mut u8, u32, *mut u32) -> i32) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; FIRST_READ];
    loop {
        let mut len = 0u32;
        let st = f(buf.as_mut_ptr(), buf.len() as u32, &mut len);
        if st == 5 && len as usize > buf.len() {
            buf.resize(len as usize, 0);
            continue;
        }
        check(call, st)?;
        buf.truncate(len as usize);
        return Ok(buf);
    }
}

fn len32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::new(crate::Code::TooLarge, format!("{} over 4 GiB", what)))
}

/// The value of `key`, or `None` when it does not exist (an empty value is
/// `Some` of an empty vector).
pub fn get(key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
    let key = key.as_ref();
    let kl = len32("key", key.len())?;
    match read_grown("kv::get", |buf, cap, len| unsafe {
        sys::kv_get(key.as_ptr(), kl, buf, cap, len)
    }) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code == crate::Code::NotFound => Ok(None),
        Err(e) => Err(e.context(String::from_utf8_lossy(key))),
    }
}

/// Stores `value` under `key`: durable once this returns, and functions whose
/// `kv_set` event matches the key are triggered.
pub fn set(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
    let (key, value) = (key.as_ref(), value.as_ref());
    let st = unsafe {
        sys::kv_set(
            key.as_ptr(),
            len32("key", key.len())?,
            value.as_ptr(),
            len32("value", value.len())?,
        )
    };
    check("kv::set", st).map_err(|e| e.context(String::from_utf8_lossy(key)))
}

/// Deletes `key`; deleting a missing key is not an error.
pub fn delete(key: impl AsRef<[u8]>) -> Result<()> {
    let key = key.as_ref();
    let st = unsafe { sys::kv_delete(key.as_ptr(), len32("key", key.len())?) };
    check("kv::delete", st).map_err(|e| e.context(String::from_utf8_lossy(key)))
}

/// Compare-and-set: stores `value` under `key` only if the key holds exactly
/// `expected` now, or, with `expected` `None`, only if it does not exist
/// (create-only). An empty expected value matches an existing empty value,
/// never a missing key. When the current value differs nothing is written
/// and the error's code is `Code::Conflict` (read it again and retry if you
/// like); a store triggers functions as `set` does.
pub fn cas(
    key: impl AsRef<[u8]>,
    expected: Option<&[u8]>,
    value: impl AsRef<[u8]>,
) -> Result<()> {
    let (key, value) = (key.as_ref(), value.as_ref());
    // WL_KV_ABSENT: the key must not exist.
    let (ep, el) = match expected {
        Some(e) => (e.as_ptr(), len32("expected value", e.len())?),
        None => (std::ptr::null(), u32::MAX),
    };
    if el == u32::MAX && expected.is_some() {
        return Err(Error::new(crate::Code::TooLarge, "expected value of 4 GiB - 1"));
    }
    let st = unsafe {
        sys::kv_cas(
            key.as_ptr(),
            len32("key", key.len())?,
            ep,
            el,
            value.as_ptr(),
            len32("value", value.len())?,
        )
    };
    check("kv::cas", st).map_err(|e| e.context(String::from_utf8_lossy(key)))
}

/// Adds `delta` to the decimal integer stored under `key` (a missing key
/// counts as 0) and returns the sum, atomically. `Code::Invalid` if the value
/// is not a decimal i64 or the sum overflows; nothing is written then.
pub fn incr(key: impl AsRef<[u8]>, delta: i64) -> Result<i64> {
    let key = key.as_ref();
    let mut result = 0i64;
    let st = unsafe { sys::kv_incr(key.as_ptr(), len32("key", key.len())?, delta, &mut result) };
    check("kv::incr", st).map_err(|e| e.context(String::from_utf8_lossy(key)))?;
    Ok(result)
}

/// Up to `limit` (key, value) pairs whose key starts with `prefix`, in key
/// order, among the keys this function may `get`.
pub fn scan(prefix: impl AsRef<[u8]>, limit: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let prefix = prefix.as_ref();
    let pl = len32("prefix", prefix.len())?;
    let raw = read_grown("kv::scan", |buf, cap, len| unsafe {
        sys::kv_scan(prefix.as_ptr(), pl, limit, buf, cap, len)
    })?;
    packed::parse(&raw)
}

/// Several sets written atomically (in a cluster: per owning node), then
/// triggered as `set` would. Nothing is written if any key is not allowed.
#[derive(Default)]
pub struct Batch {
    packed: Vec<u8>,
    count: usize,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<&mut Batch> {
        packed::push(&mut self.packed, key.as_ref(), value.as_ref())?;
        self.count += 1;
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn commit(self) -> Result<()> {
        let st =
            unsafe { sys::kv_set_batch(self.packed.as_ptr(), len32("batch", self.packed.len())?) };
        check("kv::batch", st)
    }
}

/// Writes every pair in one atomic batch.
pub fn batch<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Result<()> {
    let mut b = Batch::new();
    for (k, v) in pairs {
        b.set(k, v)?;
    }
    b.commit()
}
