//! The raw host imports, one to one with sdk/include/waverless.h. Every
//! pointer is a guest address; the host bounds-checks each one.

#[link(wasm_import_module = "waverless")]
extern "C" {
    pub fn kv_get(key: *const u8, key_len: u32, buf: *mut u8, cap: u32, len: *mut u32) -> i32;
    pub fn kv_set(key: *const u8, key_len: u32, value: *const u8, value_len: u32) -> i32;
    pub fn kv_delete(key: *const u8, key_len: u32) -> i32;
    pub fn kv_set_batch(packed: *const u8, len: u32) -> i32;
    pub fn kv_scan(
        prefix: *const u8,
        prefix_len: u32,
        limit: u32,
        buf: *mut u8,
        cap: u32,
        len: *mut u32,
    ) -> i32;
    pub fn kv_cas(
        key: *const u8,
        key_len: u32,
        expected: *const u8,
        expected_len: u32,
        value: *const u8,
        value_len: u32,
    ) -> i32;
    pub fn kv_incr(key: *const u8, key_len: u32, delta: i64, result: *mut i64) -> i32;
    pub fn invocation_id(buf: *mut u8, cap: u32, len: *mut u32) -> i32;
    pub fn wait_triggered() -> i32;
    pub fn fail(code: i32, msg: *const u8, len: u32) -> !;
    pub fn sleep_ms(ms: u32) -> i32;
    pub fn body_read(buf: *mut u8, cap: u32, nread: *mut u32) -> i32;
    pub fn output_write(data: *const u8, len: u32) -> i32;
    pub fn log(level: i32, msg: *const u8, len: u32) -> i32;
    pub fn file_open(path: *const u8, path_len: u32, fd: *mut i32) -> i32;
    pub fn file_size(fd: i32, size: *mut u64) -> i32;
    pub fn file_read_at(fd: i32, offset: u64, buf: *mut u8, cap: u32, nread: *mut u32) -> i32;
    pub fn file_close(fd: i32) -> i32;
}

// WASI's random source (the host's getrandom), for guests that need unique
// names without a crate.
#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    pub fn random_get(buf: *mut u8, len: u32) -> i32;
}
