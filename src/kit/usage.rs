//! Command-line mistakes clap finds (an unknown flag, a value its parser refuses, a missing
//! argument) as `glassbox::bad_argument` diagnostics with a help line, like every other user
//! error — for the CLI (`src/main.rs`) and the REPL's `:solve`.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::diag::Diag;

/// Lets negative numbers reach the flags' value parsers on every subcommand, so `--seed -1`
/// is refused by `--seed`'s own parser ("a whole number, 0 or more") instead of being taken
/// for an unknown flag `-1`.
pub fn allow_negative_numbers(cmd: clap::Command) -> clap::Command {
    cmd.allow_negative_numbers(true)
        .mut_subcommands(allow_negative_numbers)
}

/// Whether clap's "error" is a request it answered (`--help`, `--version`): printed as clap
/// prints it, not as a diagnostic.
pub fn is_answer(e: &clap::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// `e` as a diagnostic: clap's first line as the message (prefixed by `context`, e.g.
/// `":solve"`), a help line that says what the flag takes (for a negative number given to a
/// count or a seed) or clap's own tips, and `usage` (where to read every flag).
pub fn clap_diag(e: &clap::Error, context: Option<&str>, usage: &str) -> Diag {
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_string();
    let message = match context {
        Some(c) => format!("{c}: {first}"),
        None => first,
    };
    let tips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        // "to pass '--bogus' as a value, use '-- --bogus'": no glassbox flag takes such a value.
        .filter(|tip| !tip.contains("use '-- "))
        .collect();
    let help = match negative_for_unsigned(e) {
        Some(flag) => format!("`{flag}` takes a whole number, 0 or more; {usage}"),
        None if !tips.is_empty() => format!("{}; {usage}", tips.join("; ")),
        None => usage.to_string(),
    };
    Diag::error("glassbox::bad_argument", message).help(help)
}

/// The flag, when `e` is a negative number refused by an unsigned integer parser.
fn negative_for_unsigned(e: &clap::Error) -> Option<String> {
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => v.clone(),
        _ => return None,
    };
    let negative_integer = value
        .strip_prefix('-')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if !negative_integer {
        return None;
    }
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => {
            Some(arg.split_whitespace().next().unwrap_or(arg).to_string())
        }
        _ => None,
    }
}
