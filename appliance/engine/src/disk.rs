//! Free space on the recordings file system, and the minimum-free-space rule.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Bytes available to unprivileged writers on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with NUL"))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

const REFRESH: Duration = Duration::from_secs(1);

/// The minimum-free-space rule, with the statvfs result cached for a second (it is
/// asked at every fragment and key frame).
pub struct SpaceGuard {
    root: std::path::PathBuf,
    min_free: u64,
    cached: AtomicU64,
    base: Instant,
    /// Milliseconds after `base` of the last statvfs, +1 (0: never).
    checked_ms: AtomicU64,
}

impl SpaceGuard {
    pub fn new(root: &Path, min_free: u64) -> SpaceGuard {
        SpaceGuard {
            root: root.to_path_buf(),
            min_free,
            cached: AtomicU64::new(u64::MAX),
            base: Instant::now(),
            checked_ms: AtomicU64::new(0),
        }
    }

    pub fn free(&self) -> u64 {
        let now = self.base.elapsed().as_millis() as u64 + 1;
        let last = self.checked_ms.load(Relaxed);
        let stale = last == 0 || now - last >= REFRESH.as_millis() as u64;
        // One caller refreshes; the others use the cached value.
        if stale
            && self
                .checked_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            if let Ok(f) = free_bytes(&self.root) {
                self.cached.store(f, Relaxed);
            }
        }
        self.cached.load(Relaxed)
    }

    /// `Err(reason)` when free space is below the minimum.
    pub fn check(&self) -> Result<(), String> {
        let free = self.free();
        if free < self.min_free {
            return Err(format!(
                "disk_low: {} free on {}, below the minimum of {}",
                crate::units::ByteSize(free),
                self.root.display(),
                crate::units::ByteSize(self.min_free)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_reports_low_space() {
        let dir = std::env::temp_dir();
        assert!(free_bytes(&dir).unwrap() > 0);
        assert!(SpaceGuard::new(&dir, 0).check().is_ok());
        let e = SpaceGuard::new(&dir, u64::MAX).check().unwrap_err();
        assert!(e.starts_with("disk_low: "), "{e}");
    }
}
