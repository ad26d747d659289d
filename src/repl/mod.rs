//! `glassbox repl [FILE]`: an interactive session over one growing model.
//!
//! Each input is a command (`:solve`, `:diff x^2 wrt x`, ...), one or more items
//! (declarations, equations, clauses: appended to the session program, see [`session`]), or an
//! expression, whose value and shape are printed (see [`math`]). Errors are rendered miette
//! diagnostics and the session goes on; with piped input (stdin not a terminal) the input runs
//! as a script and the first error ends it with status 1. Results go to stdout, diagnostics
//! to stderr.

mod commands;
mod input;
mod math;
mod session;
mod solve;
mod textplot;
mod training;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use crate::diag::Diag;
use crate::kit::render_diag;
use input::{CONTINUE, PROMPT, ReplHelper, needs_more};

pub use commands::Repl;

#[derive(Debug, clap::Args)]
pub struct ReplArgs {
    /// A model file to start from (`:reload` reads it again).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub fn run(args: &ReplArgs) -> ExitCode {
    let mut repl = Repl::default();
    let interactive = std::io::stdin().is_terminal();
    if let Some(path) = &args.file {
        match repl.load(path) {
            Ok(text) => {
                if interactive {
                    println!("{text}");
                }
            }
            Err(diags) => {
                report(&diags);
                if !interactive {
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if interactive {
        interactive_loop(&mut repl)
    } else {
        script(&mut repl, std::io::stdin().lock())
    }
}

fn report(diags: &[Diag]) {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = write!(err, "{}", render_diag(d));
    }
}

/// Piped input: complete inputs (balanced brackets) one after another; the first error ends
/// the run with status 1.
fn script(repl: &mut Repl, reader: impl BufRead) -> ExitCode {
    let mut pending = String::new();
    for line in reader.lines() {
        let Ok(line) = line else {
            eprintln!("glassbox: standard input is not UTF-8 text");
            return ExitCode::FAILURE;
        };
        pending.push_str(&line);
        pending.push('\n');
        if needs_more(&pending) {
            continue;
        }
        let text = std::mem::take(&mut pending);
        if !step(repl, &text) {
            return ExitCode::FAILURE;
        }
        if repl.quit {
            return ExitCode::SUCCESS;
        }
    }
    if !pending.trim().is_empty() && !step(repl, &pending) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Run one input, print its result or its diagnostics; false on error.
fn step(repl: &mut Repl, text: &str) -> bool {
    match repl.handle(text) {
        Ok(out) => {
            if !out.is_empty() {
                let mut stdout = std::io::stdout().lock();
                let _ = write!(stdout, "{out}");
                if !out.ends_with('\n') {
                    let _ = writeln!(stdout);
                }
                let _ = stdout.flush();
            }
            true
        }
        Err(diags) => {
            let _ = std::io::stdout().flush();
            report(&diags);
            false
        }
    }
}

/// Where history lives: `$XDG_DATA_HOME/glassbox/history`, else
/// `$HOME/.local/share/glassbox/history`.
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })?;
    Some(base.join("glassbox").join("history"))
}

fn interactive_loop(repl: &mut Repl) -> ExitCode {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut rl: Editor<ReplHelper, FileHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("glassbox: cannot start the line editor ({e}); reading input as a script");
            return script(repl, std::io::stdin().lock());
        }
    };
    rl.set_helper(Some(ReplHelper {
        names: repl.names(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // History is a convenience: a missing or unwritable file never stops the session.
        let _ = rl.load_history(path);
    }
    println!("glassbox repl — :help lists the commands, :quit (or Ctrl-D) leaves");
    // The input read so far: lines that leave a bracket open wait here for the next one.
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() { PROMPT } else { CONTINUE };
        match rl.readline(prompt) {
            Ok(line) => {
                if pending.is_empty() && line.trim().is_empty() {
                    continue;
                }
                pending.push_str(&line);
                pending.push('\n');
                if needs_more(&pending) {
                    continue;
                }
                let text = std::mem::take(&mut pending);
                let _ = rl.add_history_entry(text.trim_end());
                step(repl, &text);
                if let Some(h) = rl.helper_mut() {
                    h.names = repl.names();
                }
                if repl.quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                println!("(Ctrl-C: input dropped; :quit or Ctrl-D leaves)");
            }
            Err(ReadlineError::Eof) if !pending.is_empty() => {
                // Ctrl-D inside an open bracket: run what was typed (the parser says what is
                // missing), as a script's last input runs.
                step(repl, &std::mem::take(&mut pending));
                break;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("glassbox: cannot read input: {e}");
                break;
            }
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = rl.save_history(path);
    }
    ExitCode::SUCCESS
}
