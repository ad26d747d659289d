//! `glassbox fmt`: canonical source. A file with parse errors is never rewritten: formatting
//! would drop the items that did not parse.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::render::emit;
use crate::diag::Diag;

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Model files to format.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print nothing; exit 1 if a file is not in canonical form (for CI).
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the files in place (atomically) instead of printing them.
    #[arg(long, short = 'w')]
    pub write: bool,
}

pub fn run(args: &FmtArgs) -> ExitCode {
    let mut failed = false;
    for path in &args.files {
        match format_file(path) {
            Ok((original, formatted)) => {
                if args.check {
                    if original != formatted {
                        println!("{} is not formatted", path.display());
                        failed = true;
                    }
                } else if args.write {
                    if original != formatted
                        && let Err(d) = write_atomically(path, &formatted)
                    {
                        emit(&[d]);
                        failed = true;
                    }
                } else {
                    print!("{formatted}");
                }
            }
            Err(diags) => {
                emit(&diags);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn format_file(path: &Path) -> Result<(String, String), Vec<Diag>> {
    let file = super::load_source(path).map_err(|d| vec![d])?;
    let (program, diags) = crate::syntax::parse(&file);
    if diags.iter().any(Diag::is_error) {
        return Err(diags);
    }
    Ok((file.text.clone(), crate::syntax::format(&program)))
}

/// Write to a temporary file beside the target, then rename: a crash never leaves a
/// half-written model file.
fn write_atomically(path: &Path, text: &str) -> Result<(), Diag> {
    let tmp = path.with_extension("gbx.fmt-tmp");
    let io = |e: std::io::Error| {
        Diag::error(
            "glassbox::io_error",
            format!("cannot write `{}`: {e}", path.display()),
        )
        .help("check that the file and its directory are writable")
    };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
