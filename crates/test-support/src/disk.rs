//! A disk that fills up on demand, under the relay's real SQLite: a VFS over the system one
//! that answers every write to the files of a chosen directory with `SQLITE_FULL`, which is
//! what SQLite's unix VFS answers when `write(2)` says `ENOSPC`. The failure comes where a full
//! disk brings it: when the WAL frames are written, at commit, through the product's own
//! statements and sqlx's own code (a lost commit error is exactly what it must catch).
//!
//! Why not the alternatives: `PRAGMA max_page_count` fails only when a statement needs a new
//! page, inside the statement (never at commit), and an in-place update needs none; a small
//! tmpfs needs mount rights that CI containers do not give. Every write fails (not only the
//! ones that would extend a file), so the outcome does not depend on how much room the WAL
//! happens to have left: the worst case, every time.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Mutex, OnceLock};

use libsqlite3_sys as ffi;

/// The VFS name to give the store (`StoreOptions::vfs`).
pub const VFS_NAME: &str = "relay-test-full-disk";

/// The directories whose disk is full right now.
static FULL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// The system VFS, stored as an address: registered once, never freed.
static PARENT: OnceLock<usize> = OnceLock::new();

/// The disk under one data directory: full or not.
pub struct FullDisk {
    dir: PathBuf,
}

impl FullDisk {
    /// Registers the VFS (once per process) for the files under `dir`; the disk starts with
    /// room.
    pub fn under(dir: &Path) -> Self {
        register();
        // SQLite names files by their full, resolved path.
        Self {
            dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
        }
    }

    pub fn vfs_name(&self) -> &'static str {
        VFS_NAME
    }

    /// From now on every write under the directory fails: the disk is full.
    pub fn fill(&self) {
        let mut full = FULL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !full.contains(&self.dir) {
            full.push(self.dir.clone());
        }
    }

    /// Room again.
    pub fn free(&self) {
        FULL.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|d| d != &self.dir);
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        self.free();
    }
}

fn is_full(path: &Path) -> bool {
    FULL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|dir| path.starts_with(dir))
}

fn parent() -> *mut ffi::sqlite3_vfs {
    PARENT.get().copied().unwrap_or(0) as *mut ffi::sqlite3_vfs
}

fn register() {
    PARENT.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initialises SQLite and returns the default VFS, which lives
        // for the whole process. Our VFS copies it (its helpers such as xDelete or
        // xFullPathname then work unchanged, with the same pAppData) and replaces only the
        // file size and xOpen; it is leaked on purpose: SQLite keeps a pointer to it.
        unsafe {
            let system = ffi::sqlite3_vfs_find(ptr::null());
            assert!(!system.is_null(), "SQLite has a default VFS");
            let mut ours: ffi::sqlite3_vfs = *system;
            ours.szOsFile = std::mem::size_of::<ShimFile>() as c_int;
            ours.pNext = ptr::null_mut();
            ours.zName = CString::new(VFS_NAME).expect("name").into_raw();
            ours.xOpen = Some(shim_open);
            let ours = Box::into_raw(Box::new(ours));
            let rc = ffi::sqlite3_vfs_register(ours, 0);
            assert_eq!(rc, ffi::SQLITE_OK, "VFS registered");
            system as usize
        }
    });
}

/// What SQLite allocates for each open file of our VFS: the file it sees, then the system
/// VFS's file we forward to, and the path, to know whether its disk is full.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    path: *mut PathBuf,
}

static SHIM_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(shim_close),
    xRead: Some(shim_read),
    xWrite: Some(shim_write),
    xTruncate: Some(shim_truncate),
    xSync: Some(shim_sync),
    xFileSize: Some(shim_file_size),
    xLock: Some(shim_lock),
    xUnlock: Some(shim_unlock),
    xCheckReservedLock: Some(shim_check_reserved_lock),
    xFileControl: Some(shim_file_control),
    xSectorSize: Some(shim_sector_size),
    xDeviceCharacteristics: Some(shim_device_characteristics),
    xShmMap: Some(shim_shm_map),
    xShmLock: Some(shim_shm_lock),
    xShmBarrier: Some(shim_shm_barrier),
    xShmUnmap: Some(shim_shm_unmap),
    xFetch: Some(shim_fetch),
    xUnfetch: Some(shim_unfetch),
};

unsafe extern "C" fn shim_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives us `szOsFile` bytes at `file`; the system VFS gets its own
    // `szOsFile` bytes, which we allocate and free in xClose.
    unsafe {
        let shim = file.cast::<ShimFile>();
        (*shim).base.pMethods = ptr::null();
        let system = parent();
        let size = (*system).szOsFile;
        let real = ffi::sqlite3_malloc(size).cast::<ffi::sqlite3_file>();
        if real.is_null() {
            return ffi::SQLITE_NOMEM;
        }
        ptr::write_bytes(real.cast::<u8>(), 0, size as usize);
        let Some(open) = (*system).xOpen else {
            ffi::sqlite3_free(real.cast());
            return ffi::SQLITE_MISUSE;
        };
        let rc = open(system, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // SQLite's rule: a file whose pMethods is set is closed even when xOpen failed.
            if !(*real).pMethods.is_null()
                && let Some(close) = (*(*real).pMethods).xClose
            {
                close(real);
            }
            ffi::sqlite3_free(real.cast());
            return rc;
        }
        let path = if name.is_null() {
            ptr::null_mut()
        } else {
            let text = CStr::from_ptr(name as *const c_char).to_string_lossy();
            Box::into_raw(Box::new(PathBuf::from(text.as_ref())))
        };
        (*shim).real = real;
        (*shim).path = path;
        (*shim).base.pMethods = &SHIM_METHODS;
        rc
    }
}

/// The system file behind ours, and its methods.
unsafe fn real(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: only called on files our xOpen opened successfully.
    unsafe {
        let real = (*file.cast::<ShimFile>()).real;
        (real, &*(*real).pMethods)
    }
}

unsafe fn disk_full(file: *mut ffi::sqlite3_file) -> bool {
    // SAFETY: as `real`.
    unsafe {
        let path = (*file.cast::<ShimFile>()).path;
        !path.is_null() && is_full(&*path)
    }
}

macro_rules! forward {
    ($file:expr, $method:ident $(, $arg:expr)*) => {{
        let (real, methods) = real($file);
        match methods.$method {
            Some(method) => method(real $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn shim_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: the file was opened by shim_open; its parts are freed once, here.
    unsafe {
        let shim = file.cast::<ShimFile>();
        let rc = forward!(file, xClose);
        ffi::sqlite3_free((*shim).real.cast());
        if !(*shim).path.is_null() {
            drop(Box::from_raw((*shim).path));
        }
        (*shim).real = ptr::null_mut();
        (*shim).path = ptr::null_mut();
        rc
    }
}

unsafe extern "C" fn shim_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwards SQLite's own arguments to the system file.
    unsafe { forward!(file, xRead, buf, amount, offset) }
}

unsafe extern "C" fn shim_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe {
        if disk_full(file) {
            return ffi::SQLITE_FULL;
        }
        forward!(file, xWrite, buf, amount, offset)
    }
}

unsafe extern "C" fn shim_truncate(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xTruncate, size) }
}

unsafe extern "C" fn shim_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xSync, flags) }
}

unsafe extern "C" fn shim_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xFileSize, size) }
}

unsafe extern "C" fn shim_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xLock, level) }
}

unsafe extern "C" fn shim_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xUnlock, level) }
}

unsafe extern "C" fn shim_check_reserved_lock(
    file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xCheckReservedLock, out) }
}

unsafe extern "C" fn shim_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe {
        // Growing a file ahead of time needs room too.
        if op == ffi::SQLITE_FCNTL_SIZE_HINT && disk_full(file) {
            return ffi::SQLITE_FULL;
        }
        forward!(file, xFileControl, op, arg)
    }
}

unsafe extern "C" fn shim_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as shim_read.
    unsafe {
        let (real, methods) = real(file);
        methods.xSectorSize.map_or(4096, |method| method(real))
    }
}

unsafe extern "C" fn shim_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as shim_read.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xDeviceCharacteristics
            .map_or(0, |method| method(real))
    }
}

unsafe extern "C" fn shim_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xShmMap, page, page_size, extend, out) }
}

unsafe extern "C" fn shim_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xShmLock, offset, n, flags) }
}

unsafe extern "C" fn shim_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as shim_read.
    unsafe {
        let (real, methods) = real(file);
        if let Some(method) = methods.xShmBarrier {
            method(real);
        }
    }
}

unsafe extern "C" fn shim_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xShmUnmap, delete) }
}

unsafe extern "C" fn shim_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xFetch, offset, amount, out) }
}

unsafe extern "C" fn shim_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    // SAFETY: as shim_read.
    unsafe { forward!(file, xUnfetch, offset, page) }
}
