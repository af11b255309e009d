//! Writing part files through the shard's io_uring.
//!
//! Every operation is an io_uring op on the shard's ring (tokio-uring); ops issued
//! by the shard's recorders in one scheduler tick are submitted together when the
//! thread parks. A muxer [`WriteBatch`] is written with one `writev` whose iovecs
//! point at the frames' own buffers (no copy) — or, with O_DIRECT, copied once into a
//! 4 KiB-aligned buffer (the muxer pads fragments to the alignment).
//!
//! Durability order: create (O_EXCL) → fsync the directories it created and its
//! parent → write → fdatasync at fragment ends → finalize (append, sync, patch,
//! sync, release preallocation) → rename + fsync of both directories.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use edgerec_mux::{Finish, WriteBatch};
use tokio_uring::fs::{File, OpenOptions};

/// Alignment for O_DIRECT buffers, offsets and lengths.
pub const DIRECT_ALIGN: usize = 4096;

#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    pub o_direct: bool,
    /// Preallocation step in bytes; 0 for none.
    pub preallocate: u64,
}

/// An open part file.
pub struct PartFile {
    file: File,
    path: PathBuf,
    opts: WriterOptions,
    /// Bytes written (the file's length).
    len: u64,
    /// Bytes known durable.
    synced: u64,
    /// Space reserved up to this offset.
    reserved: u64,
    direct: bool,
}

impl PartFile {
    /// Creates `root/rel` exclusively, creating and syncing missing directories.
    /// If `rel` exists, `-2`, `-3`, ... is inserted before the extension.
    pub async fn create(
        root: &Path,
        rel: &Path,
        opts: WriterOptions,
    ) -> io::Result<(PartFile, PathBuf)> {
        let dir_rel = rel.parent().unwrap_or(Path::new(""));
        make_dirs(root, dir_rel).await?;
        let mut candidate = rel.to_path_buf();
        let mut n = 1;
        let (file, direct) = loop {
            let full = root.join(&candidate);
            match open_new(&full, opts.o_direct).await {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    candidate = with_counter(rel, n);
                }
                Err(e) => return Err(e),
            }
        };
        fsync_dir(&root.join(dir_rel)).await?;
        Ok((
            PartFile {
                file,
                path: root.join(&candidate),
                opts,
                len: 0,
                synced: 0,
                reserved: 0,
                direct,
            },
            candidate,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn synced_len(&self) -> u64 {
        self.synced
    }

    /// Whether writes go around the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Appends a batch at the end of the file.
    pub async fn append(&mut self, batch: WriteBatch) -> io::Result<()> {
        if batch.offset != self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "batch at {} but the file ends at {}",
                    batch.offset, self.len
                ),
            ));
        }
        self.reserve(batch.offset + batch.len).await;
        if self.direct {
            if !batch.offset.is_multiple_of(DIRECT_ALIGN as u64)
                || !batch.len.is_multiple_of(DIRECT_ALIGN as u64)
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "unaligned batch for O_DIRECT",
                ));
            }
            let mut buf = AlignedBuf::new(batch.len as usize);
            let mut at = 0;
            for c in &batch.chunks {
                buf.as_mut()[at..at + c.len()].copy_from_slice(c);
                at += c.len();
            }
            let (r, _) = self.file.write_all_at(buf, batch.offset).await;
            r?;
        } else {
            writev_all_at(&self.file, batch.chunks, batch.offset).await?;
        }
        self.len += batch.len;
        Ok(())
    }

    /// fdatasync: everything written so far is durable when this returns Ok.
    pub async fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().await?;
        self.synced = self.len;
        Ok(())
    }

    /// Writes the muxer's finish (tail append, then in-place patches), syncing in
    /// between, and releases preallocated space past the end.
    pub async fn finish(&mut self, fin: Finish) -> io::Result<()> {
        if self.direct {
            // The tail and the patches are not block-sized; finish buffered.
            set_direct(self.file.as_raw_fd(), false)?;
            self.direct = false;
        }
        if fin.append_offset != self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "finish at {} but the file ends at {}",
                    fin.append_offset, self.len
                ),
            ));
        }
        writev_all_at(&self.file, fin.append, fin.append_offset).await?;
        self.len = fin.len;
        self.sync().await?;
        for p in fin.patches {
            let (r, _) = self.file.write_all_at(p.bytes, p.offset).await;
            r?;
        }
        self.release_reserve()?;
        self.file.sync_all().await?;
        self.synced = self.len;
        Ok(())
    }

    /// After a failed write or sync: cut the file back to what is known durable
    /// (the rest is unknown after a failed fsync) and release the reservation.
    pub fn abandon_unsynced(&mut self) -> io::Result<u64> {
        truncate(self.file.as_raw_fd(), self.synced)?;
        self.len = self.synced;
        self.reserved = self.synced;
        Ok(self.synced)
    }

    pub async fn close(self) -> io::Result<()> {
        self.file.close().await
    }

    async fn reserve(&mut self, upto: u64) {
        let step = self.opts.preallocate;
        if step == 0 || upto <= self.reserved {
            return;
        }
        let from = self.reserved.max(self.len);
        let len = (upto - from).div_ceil(step) * step;
        // KEEP_SIZE: the file's length does not change, so readers never see zeros.
        match self
            .file
            .fallocate(from, len, libc::FALLOC_FL_KEEP_SIZE)
            .await
        {
            Ok(()) => self.reserved = from + len,
            // Not supported by this file system, or full: writes will say so.
            Err(_) => self.opts.preallocate = 0,
        }
    }

    fn release_reserve(&mut self) -> io::Result<()> {
        if self.reserved > self.len {
            truncate(self.file.as_raw_fd(), self.len)?;
            self.reserved = self.len;
        }
        Ok(())
    }
}

/// Most iovecs one `writev` takes (Linux IOV_MAX).
const IOV_MAX: usize = 1024;

/// Writes every chunk at `offset` with as few `writev` ops as possible, resuming
/// after short writes.
///
/// Hand-written: tokio-uring 0.5's `writev_at_all` hits `unreachable!()` on a short
/// write — what the kernel returns at a file-size limit or on a full disk — which
/// would take down the shard instead of failing one recording.
pub async fn writev_all_at(
    file: &File,
    mut chunks: Vec<bytes::Bytes>,
    mut offset: u64,
) -> io::Result<()> {
    chunks.retain(|c| !c.is_empty());
    while !chunks.is_empty() {
        let rest = if chunks.len() > IOV_MAX {
            chunks.split_off(IOV_MAX)
        } else {
            Vec::new()
        };
        let (r, sent) = file.writev_at(chunks, offset).await;
        let mut n = r?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "writev wrote nothing",
            ));
        }
        offset += n as u64;
        // Keep what was not written, in order: a partly written chunk is re-sliced.
        chunks = Vec::with_capacity(sent.len() + rest.len());
        for c in sent {
            if n >= c.len() {
                n -= c.len();
            } else {
                chunks.push(c.slice(n..));
                n = 0;
            }
        }
        chunks.extend(rest);
    }
    Ok(())
}

async fn open_new(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true).mode(0o644);
    if direct {
        o.custom_flags(libc::O_CLOEXEC | libc::O_DIRECT);
        match o.open(path).await {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::warn!(path = %path.display(), "file system refuses O_DIRECT; writing through the page cache");
                // The file was not created (open failed), so fall through.
            }
            Err(e) => return Err(e),
        }
    }
    o.custom_flags(libc::O_CLOEXEC);
    Ok((o.open(path).await?, false))
}

/// `name-N.ext` for a collision on `name.ext`.
fn with_counter(rel: &Path, n: u32) -> PathBuf {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match rel.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    rel.with_file_name(name)
}

/// Creates `root/rel` and its missing parents, syncing each new directory's parent.
pub async fn make_dirs(root: &Path, rel: &Path) -> io::Result<()> {
    let mut dir = root.to_path_buf();
    for c in rel.components() {
        let parent = dir.clone();
        dir.push(c);
        match tokio_uring::fs::create_dir(&dir).await {
            Ok(()) => fsync_dir(&parent).await?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// fsync of a directory: makes the entries created or renamed in it durable.
pub async fn fsync_dir(dir: &Path) -> io::Result<()> {
    let d = File::open(dir).await?;
    let r = d.sync_all().await;
    d.close().await?;
    r
}

/// Renames `root/from` to `root/to` (creating `to`'s directories) and syncs both
/// directories.
pub async fn rename_durable(root: &Path, from: &Path, to: &Path) -> io::Result<()> {
    let to_dir = to.parent().unwrap_or(Path::new(""));
    make_dirs(root, to_dir).await?;
    // Never replace an existing file.
    if tokio_uring::fs::statx(root.join(to)).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "rename target exists",
        ));
    }
    tokio_uring::fs::rename(root.join(from), root.join(to)).await?;
    fsync_dir(&root.join(to_dir)).await?;
    let from_dir = from.parent().unwrap_or(Path::new(""));
    if from_dir != to_dir {
        fsync_dir(&root.join(from_dir)).await?;
    }
    Ok(())
}

fn truncate(fd: RawFd, len: u64) -> io::Result<()> {
    // SAFETY: ftruncate on a file descriptor we own; no memory is involved.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_direct(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl get/set of status flags on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        if libc::fcntl(fd, libc::F_SETFL, flags) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A heap buffer aligned for O_DIRECT, taken from and given back to its
/// thread's pool of such buffers.
///
/// Pooled because a fresh buffer per fragment (hundreds of KiB, so an mmap,
/// page faults and zeroing in the kernel each time) cost more kernel time than
/// the page-cache copy O_DIRECT saves (bench/README.md, 2026-12-02). Buffers are
/// zeroed once when first allocated, so every byte is always initialised. A
/// shard's writes complete on its own thread, where the buffer returns.
pub struct AlignedBuf {
    ptr: *mut u8,
    /// Bytes allocated: a multiple of [`POOL_GRAIN`].
    cap: usize,
    /// Bytes in use (what a write sends).
    len: usize,
}

/// Allocation step of pooled buffers.
const POOL_GRAIN: usize = 64 * 1024;
/// Bytes of idle buffers a thread keeps; larger buffers are never kept.
const POOL_KEEP: usize = 8 << 20;

/// A thread's idle buffers: (pointer, capacity), and their total capacity.
struct Pool {
    idle: Vec<(*mut u8, usize)>,
    bytes: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for &(ptr, cap) in &self.idle {
            let layout = Layout::from_size_align(cap, DIRECT_ALIGN).expect("valid layout");
            // SAFETY: allocated by AlignedBuf::new with this layout; idle, so unused.
            unsafe { dealloc(ptr, layout) }
        }
    }
}

thread_local! {
    static POOL: std::cell::RefCell<Pool> =
        const { std::cell::RefCell::new(Pool { idle: Vec::new(), bytes: 0 }) };
}

impl AlignedBuf {
    /// A buffer of `len` bytes (contents unspecified but initialised).
    pub fn new(len: usize) -> AlignedBuf {
        let cap = len.max(1).div_ceil(POOL_GRAIN) * POOL_GRAIN;
        // The smallest idle buffer that fits, if its size is not wasteful.
        let pooled = POOL
            .try_with(|p| {
                let Pool { idle, bytes } = &mut *p.borrow_mut();
                let i = idle
                    .iter()
                    .enumerate()
                    .filter(|(_, &(_, c))| c >= cap && c <= cap * 2)
                    .min_by_key(|(_, &(_, c))| c)
                    .map(|(i, _)| i)?;
                let (ptr, c) = idle.swap_remove(i);
                *bytes -= c;
                Some((ptr, c))
            })
            .ok()
            .flatten();
        let (ptr, cap) = pooled.unwrap_or_else(|| {
            let layout = Layout::from_size_align(cap, DIRECT_ALIGN).expect("valid layout");
            // SAFETY: non-zero size, valid alignment.
            let ptr = unsafe { alloc_zeroed(layout) };
            if ptr.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            (ptr, cap)
        });
        AlignedBuf { ptr, cap, len }
    }

    /// Idle pooled bytes on this thread (for tests).
    #[cfg(test)]
    fn pooled_bytes() -> usize {
        POOL.with(|p| p.borrow().bytes)
    }
}

impl AsMut<[u8]> for AlignedBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr points at an allocation of cap >= len initialised bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let (ptr, cap) = (self.ptr, self.cap);
        let kept = POOL
            .try_with(|p| {
                let Pool { idle, bytes } = &mut *p.borrow_mut();
                if *bytes + cap > POOL_KEEP {
                    return false;
                }
                idle.push((ptr, cap));
                *bytes += cap;
                true
            })
            .unwrap_or(false);
        if !kept {
            let layout = Layout::from_size_align(cap, DIRECT_ALIGN).expect("valid layout");
            // SAFETY: allocated in new() with this layout; no longer referenced.
            unsafe { dealloc(ptr, layout) }
        }
    }
}

// SAFETY: the buffer is heap-allocated and never moves or reallocates while owned.
unsafe impl tokio_uring::buf::IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
}

/// Measures an awaited operation, for the write-latency histogram.
pub async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, std::time::Duration) {
    let t = Instant::now();
    let r = f.await;
    (r, t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use edgerec_media::{MediaTime, Timescale};
    use edgerec_mux::Patch;

    fn batch(offset: u64, parts: &[&'static [u8]]) -> WriteBatch {
        let chunks: Vec<Bytes> = parts.iter().map(|p| Bytes::from_static(p)).collect();
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        WriteBatch {
            offset,
            chunks,
            len,
            durable: true,
            fragment: None,
        }
    }

    #[test]
    fn create_append_finish_rename() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        tokio_uring::start(async move {
            let opts = WriterOptions {
                o_direct: false,
                preallocate: 1 << 20,
            };
            let rel = Path::new("live/cam1/2026/x.mp4");
            let (mut f, got) = PartFile::create(&root, rel, opts).await.unwrap();
            assert_eq!(got, rel);
            // A second file with the same name gets a counter.
            let (g, got2) = PartFile::create(&root, rel, opts).await.unwrap();
            assert_eq!(got2, Path::new("live/cam1/2026/x-2.mp4"));
            g.close().await.unwrap();
            f.append(batch(0, &[b"hello ", b"world"])).await.unwrap();
            f.sync().await.unwrap();
            assert!(f.append(batch(3, &[b"x"])).await.is_err());
            f.finish(Finish {
                append_offset: 11,
                append: vec![Bytes::from_static(b"!")],
                patches: vec![Patch {
                    offset: 0,
                    bytes: b"J".to_vec(),
                }],
                duration: MediaTime::new(0, Timescale::MILLIS),
                len: 12,
            })
            .await
            .unwrap();
            f.close().await.unwrap();
            let full = root.join(rel);
            assert_eq!(std::fs::read(&full).unwrap(), b"Jello world!");
            // Preallocation was released: no blocks reserved past the end.
            let meta = std::fs::metadata(&full).unwrap();
            assert_eq!(meta.len(), 12);
            assert!(std::os::unix::fs::MetadataExt::blocks(&meta) * 512 < 1 << 20);
            rename_durable(&root, rel, Path::new("live/final/y.mp4"))
                .await
                .unwrap();
            assert_eq!(
                std::fs::read(root.join("live/final/y.mp4")).unwrap(),
                b"Jello world!"
            );
            assert!(rename_durable(
                &root,
                Path::new("live/cam1/2026/x-2.mp4"),
                Path::new("live/final/y.mp4")
            )
            .await
            .is_err());
        });
    }

    #[test]
    fn vectored_writes_survive_many_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        tokio_uring::start(async move {
            let opts = WriterOptions {
                o_direct: false,
                preallocate: 0,
            };
            let (f, rel) = PartFile::create(&root, Path::new("v.bin"), opts)
                .await
                .unwrap();
            // More chunks than one writev takes, some empty.
            let chunks: Vec<Bytes> = (0..3000u32)
                .map(|i| Bytes::from(vec![(i % 251) as u8; (i % 7) as usize]))
                .collect();
            let want: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            writev_all_at(&f.file, chunks, 0).await.unwrap();
            f.close().await.unwrap();
            assert_eq!(std::fs::read(root.join(rel)).unwrap(), want);
        });
    }

    #[test]
    fn abandon_cuts_back_to_the_synced_length() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        tokio_uring::start(async move {
            let opts = WriterOptions {
                o_direct: false,
                preallocate: 0,
            };
            let (mut f, rel) = PartFile::create(&root, Path::new("a.mp4"), opts)
                .await
                .unwrap();
            f.append(batch(0, &[b"durable"])).await.unwrap();
            f.sync().await.unwrap();
            f.append(batch(7, &[b" unsynced"])).await.unwrap();
            assert_eq!(f.abandon_unsynced().unwrap(), 7);
            f.close().await.unwrap();
            assert_eq!(std::fs::read(root.join(rel)).unwrap(), b"durable");
        });
    }

    #[test]
    fn aligned_buffers_are_reused_up_to_the_pool_limit() {
        // A thread of its own: the pool is per thread.
        std::thread::spawn(|| {
            let mut a = AlignedBuf::new(300_000);
            assert_eq!(a.as_mut().len(), 300_000);
            assert_eq!(a.ptr as usize % DIRECT_ALIGN, 0);
            a.as_mut().fill(9);
            let first = a.ptr;
            drop(a);
            assert_eq!(AlignedBuf::pooled_bytes(), 5 * POOL_GRAIN);
            // The same size class takes the idle buffer back.
            let b = AlignedBuf::new(310_000);
            assert_eq!(b.ptr, first);
            assert_eq!(AlignedBuf::pooled_bytes(), 0);
            // A much smaller request does not pin a large buffer.
            let c = AlignedBuf::new(4096);
            assert_ne!(c.ptr, first);
            drop(b);
            drop(c);
            // Past the limit, buffers are freed instead of kept.
            let big: Vec<_> = (0..20).map(|_| AlignedBuf::new(1 << 20)).collect();
            drop(big);
            assert!(AlignedBuf::pooled_bytes() <= POOL_KEEP);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn direct_writes_need_aligned_batches() {
        // /var/tmp is disk-backed here (tmpfs refuses O_DIRECT; then we fall back).
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let root = dir.path().to_path_buf();
        tokio_uring::start(async move {
            let opts = WriterOptions {
                o_direct: true,
                preallocate: 0,
            };
            let (mut f, rel) = PartFile::create(&root, Path::new("d.mp4"), opts)
                .await
                .unwrap();
            static BLOCK: [u8; 4096] = [7u8; 4096];
            f.append(batch(0, &[&BLOCK[..100], &BLOCK[100..]]))
                .await
                .unwrap();
            if f.is_direct() {
                assert!(f.append(batch(4096, &[b"x"])).await.is_err());
            }
            f.sync().await.unwrap();
            f.finish(Finish {
                append_offset: 4096,
                append: vec![Bytes::from_static(b"tail")],
                patches: vec![],
                duration: MediaTime::new(0, Timescale::MILLIS),
                len: 4100,
            })
            .await
            .unwrap();
            f.close().await.unwrap();
            let data = std::fs::read(root.join(rel)).unwrap();
            assert_eq!(data.len(), 4100);
            assert!(data[..4096].iter().all(|&b| b == 7));
        });
    }
}
