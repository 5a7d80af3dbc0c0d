//! Read-only access to the app's `files/` folder. Paths are relative to it;
//! absolute paths, `..` and symlinks leading out are `Code::Permission`.

use crate::error::{check, Error, Result};
use crate::sys;

/// An open file of the app's data folder, closed on drop.
pub struct File {
    fd: i32,
}

impl File {
    pub fn open(path: &str) -> Result<File> {
        let mut fd = -1;
        let len = u32::try_from(path.len())
            .map_err(|_| Error::new(crate::Code::Invalid, "path over 4 GiB"))?;
        let st = unsafe { sys::file_open(path.as_ptr(), len, &mut fd) };
        check("files::open", st).map_err(|e| e.context(path))?;
        Ok(File { fd })
    }

    pub fn size(&self) -> Result<u64> {
        let mut size = 0u64;
        check("files::size", unsafe { sys::file_size(self.fd, &mut size) })?;
        Ok(size)
    }

    /// Reads up to `buf.len()` bytes at `offset`: the count, 0 at the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let cap = buf.len().min(u32::MAX as usize) as u32;
        let mut got = 0u32;
        let st = unsafe { sys::file_read_at(self.fd, offset, buf.as_mut_ptr(), cap, &mut got) };
        check("files::read_at", st)?;
        Ok(got as usize)
    }

    /// The rest of the file from `offset`.
    pub fn read_to_end(&self, offset: u64) -> Result<Vec<u8>> {
        let size = self.size()?;
        let mut out = vec![0u8; size.saturating_sub(offset) as usize];
        let mut at = 0usize;
        while at < out.len() {
            let got = self.read_at(offset + at as u64, &mut out[at..])?;
            if got == 0 {
                break;
            }
            at += got;
        }
        out.truncate(at);
        Ok(out)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // Closing a valid fd cannot fail; the host frees it at the end of the
        // invocation in any case.
        unsafe { sys::file_close(self.fd) };
    }
}

/// The whole contents of a file of the app's data folder.
pub fn read(path: &str) -> Result<Vec<u8>> {
    File::open(path)?.read_to_end(0)
}
