//! Safe Rust bindings to the Waverless host ABI (the same contract as
//! sdk/include/waverless.h), for guests built with Debian's rustc and cargo
//! for `wasm32-wasi`, offline.
//!
//! A function is a plain Rust function taking the invocation's [`Args`] and
//! returning [`Result`]; [`export!`] turns it into the wasm export the
//! platform calls. An `Err` fails the invocation with its code and message
//! (the HTTP status follows the code), as `wl_fail` does in C; a panic fails
//! it too, with the panic message.
//!
//! ```ignore
//! use waverless::{kv, Args, Result};
//!
//! fn greet(args: &Args) -> Result<()> {
//!     let name = args.str(0).unwrap_or("world");
//!     kv::set("greeted", name)?;
//!     waverless::output(format!("hello {}", name))
//! }
//! waverless::export!(greet);
//! ```

mod error;
pub mod packed;

#[cfg(target_arch = "wasm32")]
pub mod files;
#[cfg(target_arch = "wasm32")]
mod guest;
#[cfg(target_arch = "wasm32")]
pub mod kv;
#[cfg(target_arch = "wasm32")]
mod sys;
#[cfg(target_arch = "wasm32")]
pub use guest::*;

pub use error::{Code, Error, Result};

/// The arguments of one invocation: the HTTP body of a `buffer` function, or
/// the key that triggered a `kv_set` function (see `args:` in app.yaml).
pub struct Args<'a> {
    items: Vec<&'a [u8]>,
}

impl<'a> Args<'a> {
    /// From the `(ptr, len)` pairs the host wrote at `argv`.
    ///
    /// # Safety
    /// `argv` must point to `argc` pairs of guest addresses and lengths that
    /// stay valid for `'a` (the host's argument block, freed after the call).
    #[doc(hidden)]
    pub unsafe fn from_raw(argv: u32, argc: u32) -> Args<'a> {
        let pairs = argv as usize as *const u32;
        let items = (0..argc as usize)
            .map(|i| {
                let ptr = *pairs.add(2 * i) as usize as *const u8;
                let len = *pairs.add(2 * i + 1) as usize;
                std::slice::from_raw_parts(ptr, len)
            })
            .collect();
        Args { items }
    }

    /// For tests outside wasm: arguments from byte slices.
    pub fn from_slices(items: Vec<&'a [u8]>) -> Args<'a> {
        Args { items }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Argument `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.items.get(i).copied()
    }

    /// Argument `i` as text, or `None` past the end or if it is not UTF-8.
    pub fn str(&self, i: usize) -> Option<&'a str> {
        self.get(i).and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// Log levels of [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Declares wasm exports for functions `fn(&Args) -> Result<()>`, each
/// under its own name (the name app.yaml uses):
///
/// ```ignore
/// waverless::export!(split_file, count_slice);
/// ```
///
/// Each export runs the function, fails the invocation with the error it
/// returns, and frees the argument block the host allocated with `wl_alloc`.
#[macro_export]
macro_rules! export {
    ($($name:ident),+ $(,)?) => {
        $(
            // In an anonymous const block, the export's own symbol adds no
            // name to the caller's module (a function may share its name with
            // a module it imports, such as `files`).
            const _: () = {
                #[export_name = stringify!($name)]
                extern "C" fn export(argv: u32, argc: u32) {
                    $crate::__invoke(argv, argc, $name)
                }
            };
        )+
    };
}
