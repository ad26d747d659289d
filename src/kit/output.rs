//! Where a result goes: a file (atomically) or stdout; statistics to stderr when the result
//! itself goes to stdout, so the two never mix.

use std::path::Path;

use super::io::write_atomic;
use crate::diag::Diag;

/// `text` into `path`, or onto stdout without one.
pub fn write_or_print(path: Option<&Path>, text: &str) -> Result<(), Vec<Diag>> {
    match path {
        Some(path) => write_atomic(path, text.as_bytes()).map_err(|d| vec![d]),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Statistics: to stderr when the CSV itself goes to stdout.
pub fn print_stats(text: &str, csv_to_stdout: bool) {
    // The peak memory here, not in `app::export`: reading it is IO, and it describes this
    // process, not the solve (the REPL's `:stats` leaves it out).
    let peak = super::memory::stats_line();
    if csv_to_stdout {
        eprint!("{text}{peak}");
    } else {
        print!("{text}{peak}");
    }
}

/// Whether `path` names a JSON file (`-o out.json`); anything else is CSV.
pub fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}
