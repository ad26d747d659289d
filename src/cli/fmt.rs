//! `glassbox fmt`: canonical source. A file with parse errors is never rewritten: formatting
//! would drop the items that did not parse.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::diag::Diag;
use crate::kit::{emit, load_source, write_atomic};

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
                        && let Err(d) = write_atomic(path, formatted.as_bytes()).map_err(|d| {
                            d.help("check that the file and its directory are writable")
                        })
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
    let file = load_source(path).map_err(|d| vec![d])?;
    let (program, diags) = crate::syntax::parse(&file);
    if diags.iter().any(Diag::is_error) {
        return Err(diags);
    }
    Ok((file.text.clone(), crate::syntax::format(&program)))
}
