//! Linking a standalone binary: the object file `jit::object` wrote, glassbox's runtime library
//! (`libglassbox.a`, which cargo builds next to the `glassbox` executable: the crate is also a
//! `staticlib`), and the C library, by the system C compiler.
//!
//! Only the C library and libm are linked dynamically: the Rust runtime comes from the
//! archive, and `-static-libgcc` takes the unwinder from libgcc's static part rather than
//! `libgcc_s.so`. Unused code is dropped (`--gc-sections`), symbols stripped (`-s`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::io::{path_error, temp_path};
use crate::diag::Diag;

/// The runtime library's file name, and the variable that overrides where it is looked for.
pub const RUNTIME: &str = "libglassbox.a";
pub const RUNTIME_ENV: &str = "GLASSBOX_RUNTIME";

/// Finds `libglassbox.a`: `$GLASSBOX_RUNTIME`, else the newest of the runtime archives cargo
/// left around the running `glassbox`: `target/<profile>/libglassbox.a` (written by `cargo
/// build`) and `target/<profile>/deps/libglassbox-<hash>.a` (what `cargo run` and `cargo test`
/// build: they compile the library as a dependency and do not copy it up, so the copy beside
/// the executable can be older than the code that is running).
pub fn runtime_library() -> Result<PathBuf, Diag> {
    if let Some(path) = std::env::var_os(RUNTIME_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Diag::error(
                "glassbox::runtime_missing",
                format!(
                    "{RUNTIME_ENV} names `{}`, which is not a file",
                    path.display()
                ),
            )
            .help(format!(
                "point {RUNTIME_ENV} at the {RUNTIME} cargo built, or unset it"
            )))
        };
    }
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(Path::parent);
    newest_beside(dir.into_iter()).ok_or_else(|| {
        Diag::error(
            "glassbox::runtime_missing",
            format!(
                "glassbox's runtime library `{RUNTIME}` is not next to this glassbox ({})",
                dir.map_or("unknown".into(), |d| d.display().to_string())
            ),
        )
        .help(format!(
            "`cargo build --release` builds it into target/release/ beside glassbox; or set {RUNTIME_ENV} to its path"
        ))
    })
}

/// The runtime library for a program that is not `glassbox` itself (the Python package):
/// `$GLASSBOX_RUNTIME`, else the newest runtime archive beside a `glassbox` executable on
/// `PATH`, as [`runtime_library`] looks beside itself.
pub fn runtime_library_on_path() -> Result<PathBuf, Diag> {
    if std::env::var_os(RUNTIME_ENV).is_some() {
        return runtime_library();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| d.join("glassbox").is_file())
        .collect();
    newest_beside(dirs.iter().map(PathBuf::as_path)).ok_or_else(|| {
        Diag::error(
            "glassbox::runtime_missing",
            format!(
                "glassbox's runtime library `{RUNTIME}` was not found: {RUNTIME_ENV} is not set and no `glassbox` on PATH has it beside it"
            ),
        )
        .help(format!(
            "build the CLI (`cargo build --release` in the glassbox repository) and put target/release on PATH, or set {RUNTIME_ENV} to target/release/{RUNTIME}"
        ))
    })
}

/// The newest runtime archive in, above or in `deps/` of any of `dirs` (where cargo leaves
/// them around an executable: a test binary lives in `deps/`).
fn newest_beside<'a>(dirs: impl Iterator<Item = &'a Path>) -> Option<PathBuf> {
    dirs.flat_map(|d| [d.to_path_buf(), d.join(".."), d.join("deps")])
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| is_runtime_archive(&e.file_name().to_string_lossy()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
}

/// `libglassbox.a`, or cargo's `libglassbox-<hash>.a` in `deps/`.
fn is_runtime_archive(name: &str) -> bool {
    name == RUNTIME
        || name
            .strip_prefix("libglassbox-")
            .and_then(|rest| rest.strip_suffix(".a"))
            .is_some_and(|hash| !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Links `object` with `runtime` into the executable `out` with `$CC` (default `cc`): into a
/// temporary file beside `out`, renamed over it once linked, so a failed link (a full disk)
/// leaves any earlier `out` as it was and no half-written binary.
pub fn link(object: &Path, runtime: &Path, out: &Path) -> Result<(), Diag> {
    let tmp = temp_path(out, "link");
    let linked = link_to(object, runtime, &tmp, out).and_then(|()| {
        std::fs::rename(&tmp, out).map_err(|e| {
            path_error("write", out, &e).help("check that the output directory is writable")
        })
    });
    if linked.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    linked
}

/// The C compiler's run, writing `tmp`; `out` is the name diagnostics give.
fn link_to(object: &Path, runtime: &Path, tmp: &Path, out: &Path) -> Result<(), Diag> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.arg("-o").arg(tmp).arg(object).arg(runtime);
    let gc = if cfg!(target_os = "macos") {
        "-Wl,-dead_strip"
    } else {
        "-Wl,--gc-sections"
    };
    cmd.args(["-static-libgcc", gc, "-s"]);
    if !cfg!(target_os = "macos") {
        // glibc ≥ 2.34 has pthread, dl and rt in libc; --as-needed drops the empty stubs.
        cmd.args(["-Wl,--as-needed", "-lm", "-lpthread", "-ldl", "-lrt", "-lc"]);
    }
    let output = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Diag::error(
                "glassbox::linker_missing",
                format!("the C compiler `{cc}` that links standalone binaries was not found"),
            )
            .help(
                "install one (Debian/Ubuntu: `sudo apt install gcc`; Fedora: `sudo dnf install gcc`; macOS: `xcode-select --install`), or set CC to a C compiler",
            )
        } else {
            Diag::error(
                "glassbox::linker_missing",
                format!("cannot run the C compiler `{cc}`: {e}"),
            )
            .help("check that CC names an executable C compiler (default `cc`)")
        }
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(link_failure(
            &cc,
            out,
            runtime,
            &output.status.to_string(),
            &stderr,
        ));
    }
    Ok(())
}

/// Why the C compiler failed, read from what it printed: the disk or the output directory
/// (a `glassbox::io_error`, like any other file glassbox cannot write), or the link itself
/// (`glassbox::link_failed`; a runtime archive from another glassbox shows as undefined or
/// mismatched symbols).
fn link_failure(cc: &str, out: &Path, runtime: &Path, status: &str, stderr: &str) -> Diag {
    let said = stderr.trim_end();
    let has = |s: &str| said.to_ascii_lowercase().contains(s);
    if has("no space left on device") || has("disk quota exceeded") {
        return Diag::error(
            "glassbox::io_error",
            format!(
                "cannot write `{}`: the disk is full (the C compiler `{cc}` said:\n{said})",
                out.display()
            ),
        )
        .help(
            "free space on the disk of the output directory and of TMPDIR (where the compiler \
             writes its temporary files), or choose another `-o`",
        );
    }
    if has("permission denied") || has("cannot open output file") || has("read-only file system") {
        return Diag::error(
            "glassbox::io_error",
            format!(
                "cannot write `{}` (the C compiler `{cc}` said:\n{said})",
                out.display()
            ),
        )
        .help("check that the output directory exists and is writable");
    }
    let help = if has("undefined reference") || has("file format") || has("undefined symbol") {
        format!(
            "check that `{}` was built by this version of glassbox (`cargo build --release` \
             rebuilds it)",
            runtime.display()
        )
    } else {
        "the C compiler's message above says why; `CC` chooses another compiler".to_string()
    };
    Diag::error(
        "glassbox::link_failed",
        format!(
            "`{cc}` could not link `{}` ({status}):\n{said}",
            out.display()
        ),
    )
    .help(help)
}

#[cfg(test)]
mod tests {
    use super::{is_runtime_archive, link_failure};
    use std::path::Path;

    /// What GNU ld prints on a full disk, a read-only directory and a runtime archive from
    /// another build: the first two are the disk's fault, not the archive's.
    #[test]
    fn link_failures_name_their_cause() {
        let fail = |stderr: &str| {
            link_failure(
                "cc",
                Path::new("out/spiral"),
                Path::new("target/release/libglassbox.a"),
                "exit status: 1",
                stderr,
            )
        };
        let full = fail(
            "/usr/bin/ld: final link failed: No space left on device\ncollect2: error: ld returned 1 exit status",
        );
        assert_eq!(full.code, "glassbox::io_error");
        assert!(full.message.contains("disk is full"), "{}", full.message);
        assert!(
            !full.help.as_deref().unwrap_or("").contains("version"),
            "{full:?}"
        );
        let ro =
            fail("/usr/bin/ld: cannot open output file out/.spiral.tmp-1.link: Permission denied");
        assert_eq!(ro.code, "glassbox::io_error");
        let stale = fail(
            "/usr/bin/ld: spiral.o: in function `main': undefined reference to `glassbox_aot_main'",
        );
        assert_eq!(stale.code, "glassbox::link_failed");
        assert!(
            stale
                .help
                .as_deref()
                .unwrap_or("")
                .contains("this version of glassbox"),
            "{stale:?}"
        );
        let other = fail("cc: error: unrecognized command-line option '-static-libgcc'");
        assert_eq!(other.code, "glassbox::link_failed");
        assert!(
            !other.help.as_deref().unwrap_or("").contains("version"),
            "{other:?}"
        );
    }

    #[test]
    fn runtime_archive_names() {
        assert!(is_runtime_archive("libglassbox.a"));
        assert!(is_runtime_archive("libglassbox-5d9f1e003358447c.a"));
        assert!(!is_runtime_archive("libglassbox-.a"));
        assert!(!is_runtime_archive("libglassbox-5d9f.rlib"));
        assert!(!is_runtime_archive("libglassbox_other-5d9f.a"));
        assert!(!is_runtime_archive("libglassbox-notahash.a"));
    }
}
