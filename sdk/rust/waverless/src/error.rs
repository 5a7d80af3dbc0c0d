//! The SDK's status codes (WL_ERR_* in waverless.h) as a Rust error.

use std::fmt;

/// A host status other than WL_OK. `fail` maps it to the request's HTTP
/// status: Invalid 400, Permission 403, NotFound 404, TooLarge 429,
/// Unavailable 503, Timeout 504, everything else 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NotFound,
    Permission,
    Invalid,
    TooLarge,
    BufferTooSmall,
    Io,
    Unavailable,
    Timeout,
    Failed,
    /// `kv::cas`: the key does not hold the expected value (nothing written).
    Conflict,
    /// A code this SDK version does not know (a newer host).
    Other(i32),
}

impl Code {
    pub fn from_raw(raw: i32) -> Code {
        match raw {
            1 => Code::NotFound,
            2 => Code::Permission,
            3 => Code::Invalid,
            4 => Code::TooLarge,
            5 => Code::BufferTooSmall,
            6 => Code::Io,
            7 => Code::Unavailable,
            8 => Code::Timeout,
            9 => Code::Failed,
            10 => Code::Conflict,
            other => Code::Other(other),
        }
    }

    pub fn raw(self) -> i32 {
        match self {
            Code::NotFound => 1,
            Code::Permission => 2,
            Code::Invalid => 3,
            Code::TooLarge => 4,
            Code::BufferTooSmall => 5,
            Code::Io => 6,
            Code::Unavailable => 7,
            Code::Timeout => 8,
            Code::Failed => 9,
            Code::Conflict => 10,
            Code::Other(raw) => raw,
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn describe(self) -> &'static str {
        match self {
            Code::NotFound => "not found",
            Code::Permission => "permission denied",
            Code::Invalid => "invalid argument",
            Code::TooLarge => "too large",
            Code::BufferTooSmall => "buffer too small",
            Code::Io => "I/O error",
            Code::Unavailable => "unavailable",
            Code::Timeout => "deadline passed",
            Code::Failed => "a triggered function failed",
            Code::Conflict => "conflict: the value is not the expected one",
            Code::Other(_) => "unknown status",
        }
    }
}

/// A failed host call or a failure the function reports itself: a code the
/// host acts on and a message that ends up in the HTTP answer and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// A host call's failure, named after the call.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn host(call: &str, raw: i32) -> Error {
        let code = Code::from_raw(raw);
        Error {
            code,
            message: format!("{}: {} (status {})", call, code.describe(), raw),
        }
    }

    /// The same error with `what` in front of its message.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error {
            code: self.code,
            message: format!("{}: {}", what, self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// WL_OK or the call's error.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn check(call: &str, raw: i32) -> Result<()> {
    if raw == 0 {
        Ok(())
    } else {
        Err(Error::host(call, raw))
    }
}
