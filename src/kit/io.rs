//! Files: one constructor for the `glassbox::io_error` diagnostic, and one atomic writer.
//!
//! Every file a front end writes (trajectories, plots, weights, checkpoints, formatted
//! models, binaries' output) goes through [`write_atomic`]: a temporary file beside the
//! target, then a rename, so a failed run never leaves a half-written file.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::diag::Diag;

/// `cannot {doing}: {e}` as a `glassbox::io_error`; the caller adds the help that fits what
/// it was doing (`doing` is e.g. ``read `model.gbx` ``).
pub fn io_error(doing: impl Display, e: &std::io::Error) -> Diag {
    Diag::error("glassbox::io_error", format!("cannot {doing}: {e}"))
}

/// `cannot {verb} `path`: {e}`.
pub fn path_error(verb: &str, path: &Path, e: &std::io::Error) -> Diag {
    io_error(format_args!("{verb} `{}`", path.display()), e)
}

/// `path` could not be written: on a full disk the help says so, else `otherwise`.
fn write_error(path: &Path, e: &std::io::Error, otherwise: &str) -> Diag {
    let help = match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            "the disk is full: free space on it, or write to another disk"
        }
        _ => otherwise,
    };
    path_error("write", path, e).help(help)
}

/// A file the user named could not be read: the help says what to check for the error's kind.
pub fn read_error(path: &Path, e: &std::io::Error) -> Diag {
    path_error("read", path, e).help(match e.kind() {
        std::io::ErrorKind::NotFound => "check the path: it is relative to the current directory",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "check that the path names a readable file",
    })
}

/// A temporary path beside `path` (same directory, so the rename is atomic), ending in `ext`.
pub fn temp_path(path: &Path, ext: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}.{ext}", std::process::id()))
}

/// Write `bytes` to a temporary file beside `path` and rename it over `path` (a device or FIFO
/// at `path` is written in place).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Diag> {
    write_via_temp(path, bytes, false)
}

/// [`write_atomic`], and durable: the temporary file is flushed to the disk before the rename
/// and the directory after it, so a power loss leaves the old file or the new one, never an
/// empty or partial one (the rename alone is safe only against a killed process).
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), Diag> {
    write_via_temp(path, bytes, true)
}

fn write_via_temp(path: &Path, bytes: &[u8], durable: bool) -> Result<(), Diag> {
    // A target that exists and is not a regular file (`-o /dev/null`, a FIFO, a terminal) is
    // written in place: renaming a temporary file over it would replace the device itself with
    // a regular file (a `/dev/null` that keeps what is written to it), and there is no
    // half-written file to avoid there.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
            .map_err(|e| write_error(path, &e, "check that the path is writable"));
    }
    let tmp = temp_path(path, "tmp");
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        write_error(path, &e, "check that the directory exists and is writable")
    };
    if durable {
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        std::io::Write::write_all(&mut f, bytes).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    } else {
        std::fs::write(&tmp, bytes).map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    if durable {
        sync_dir(path.parent().unwrap_or(Path::new(".")));
    }
    Ok(())
}

/// Flush a directory's entries (a rename) to the disk. Best effort: some platforms cannot
/// open a directory as a file, and the data itself is already synced.
fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether `name` is a temporary file [`temp_path`] made (`.NAME.tmp-PID.EXT`) for another
/// process than this one: what a killed writer leaves behind.
pub fn is_stale_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((_, tail)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    let pid = tail.split_once('.').map_or(tail, |(pid, _)| pid);
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && pid != std::process::id().to_string()
}

/// Delete the temporary files killed writers left in `dir`; returns their names.
pub fn remove_stale_temps(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_stale_temp(&name) && std::fs::remove_file(e.path()).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// A run directory (or a file in it) that cannot be created or read.
pub fn access_error(path: &Path, e: &std::io::Error) -> Diag {
    path_error("access", path, e).help("check that the directory exists and is writable")
}

/// Create `dir` and its parents (a run directory).
pub fn create_dir(dir: &Path) -> Result<(), Diag> {
    std::fs::create_dir_all(dir).map_err(|e| access_error(dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_are_other_processes_temp_files() {
        assert!(is_stale_temp(".checkpoint.json.tmp-12.tmp"));
        assert!(is_stale_temp(".loss.png.tmp-99.png"));
        let own = format!(".weights.safetensors.tmp-{}.tmp", std::process::id());
        assert!(!is_stale_temp(&own), "a file this process is writing");
        for name in [
            "checkpoint.json",
            ".hidden",
            ".a.tmp-.tmp",
            ".a.tmp-x1.tmp",
            "a.tmp-1.tmp",
        ] {
            assert!(!is_stale_temp(name), "{name}");
        }
    }

    /// `-o /dev/null` and the like: a FIFO at the target stays a FIFO and receives the bytes
    /// (a rename would have replaced it with a regular file, as it once replaced this
    /// machine's `/dev/null`).
    #[cfg(unix)]
    #[test]
    fn a_fifo_target_is_written_in_place_not_replaced() {
        let dir = std::env::temp_dir().join(format!("gbx_io_fifo_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no mkfifo");
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).unwrap())
        };
        write_atomic(&fifo, b"t,x\n0,1\n").unwrap();
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        // Checked before joining: had the FIFO been replaced, the reader would wait forever.
        assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
        assert_eq!(reader.join().unwrap(), b"t,x\n0,1\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
