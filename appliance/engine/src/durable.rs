//! Durable file moves and deletes for hook actions, with blocking I/O: the hook
//! runner lives on the control runtime, not on a shard's ring, so the writer's
//! io_uring versions do not apply. Same order as the writer: directories made
//! and synced, the rename (never replacing a file), both directories synced.

use std::io;
use std::path::Path;

/// Moves `root/from` to `root/to`, creating `to`'s folders; refuses to replace
/// an existing file.
pub fn move_durable(root: &Path, from: &Path, to: &Path) -> io::Result<()> {
    let to_dir = to.parent().unwrap_or(Path::new(""));
    make_dirs(root, to_dir)?;
    rename_noreplace(&root.join(from), &root.join(to))?;
    sync_dir(&root.join(to_dir))?;
    let from_dir = from.parent().unwrap_or(Path::new(""));
    if from_dir != to_dir {
        sync_dir(&root.join(from_dir))?;
    }
    Ok(())
}

/// Removes `root/rel` (already gone is fine) and syncs its folder.
pub fn delete_durable(root: &Path, rel: &Path) -> io::Result<()> {
    match std::fs::remove_file(root.join(rel)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    sync_dir(&root.join(rel.parent().unwrap_or(Path::new(""))))
}

fn make_dirs(root: &Path, rel: &Path) -> io::Result<()> {
    let mut dir = root.to_path_buf();
    for c in rel.components() {
        let parent = dir.clone();
        dir.push(c);
        match std::fs::create_dir(&dir) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // A file (or a link planted in the root) where a folder should
                // be: refuse rather than follow it out of the root.
                if !std::fs::symlink_metadata(&dir)?.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is not a folder", dir.display()),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_create_folders_and_never_replace() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.mp4"), b"a").unwrap();
        std::fs::write(root.path().join("b.mp4"), b"b").unwrap();
        move_durable(root.path(), Path::new("a.mp4"), Path::new("x/y/a.mp4")).unwrap();
        assert_eq!(std::fs::read(root.path().join("x/y/a.mp4")).unwrap(), b"a");
        let e = move_durable(root.path(), Path::new("b.mp4"), Path::new("x/y/a.mp4")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(root.path().join("x/y/a.mp4")).unwrap(), b"a");
        delete_durable(root.path(), Path::new("b.mp4")).unwrap();
        delete_durable(root.path(), Path::new("b.mp4")).unwrap();
        assert!(!root.path().join("b.mp4").exists());
    }

    #[test]
    fn a_link_in_the_root_is_not_followed_out_of_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::fs::write(root.path().join("a.mp4"), b"a").unwrap();
        assert!(move_durable(root.path(), Path::new("a.mp4"), Path::new("out/a.mp4")).is_err());
        assert!(!outside.path().join("a.mp4").exists());
    }
}
