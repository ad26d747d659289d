//! Stage 1: source text → AST (`parse`), and AST → canonical text (`format`).
//!
//! Grammar: `grammar/glassbox.pest` (pest), operators by pest's Pratt parser. A file is split
//! into items first (`lex`), each item is parsed on its own (`parser`) and its spans shifted back
//! to file offsets, so one broken item costs one diagnostic and the rest still parse. A broken
//! item is also read shallowly (`recover`) for the names it would have declared, which the
//! checker treats as poisoned so that checking the rest of the file adds no follow-on errors.
//!
//! Architecture Invariant: `parse` never panics and never recurses deeper than the bounds
//! `lex::MAX_NESTING` (brackets) and `lex::MAX_OPERATORS` (operators per item) allow; both are
//! checked before pest sees the text.
//!
//! # Precedence, loosest first
//!
//! | level | construct                         | associativity        |
//! |-------|-----------------------------------|----------------------|
//! | 0     | range `a..b`, `a..`, `..b`, `..`  | none (not chained)   |
//! | 1     | `+` `-`                           | left                 |
//! | 2     | `*` `/` `@`                       | left                 |
//! | 3     | prefix `-`                        | —                    |
//! | 4     | `^`                               | right                |
//! | 5     | call `f(...)`, index `e[i, j]`    | postfix, left        |
//! | 6     | literals, names, `[..]`, `( )`, `decay(a -> b)`, `d(e)/dt` | — |
//!
//! `-x^2` is `-(x^2)`; `2^-1` is `2^(-1)` (a `-` may open the exponent); `a^b^c` is `a^(b^c)`.

pub mod ast;
mod format;
mod lex;
mod parser;
mod recover;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::diag::Diag;
use crate::source::{SourceFile, Span};

pub use ast::Program;
pub use format::{expr as format_expr, format, item as format_item};
pub use lex::{MAX_NESTING, MAX_OPERATORS, RESERVED};

/// Parse one file. Never panics; returns every item that parsed and one diagnostic per
/// broken item, so a file with three mistakes reports three errors. Each broken item is also
/// recorded in `Program::broken` with the names it would have declared.
pub fn parse(file: &Arc<SourceFile>) -> (Program, Vec<Diag>) {
    let text = file.text.as_str();
    let split = lex::split(text);
    let mut program = Program {
        comments: split.comments,
        ..Program::default()
    };
    let mut diags = Vec::new();
    for chunk in &split.chunks {
        let parsed = if chunk.known_start {
            lex::prescan(text, chunk).and_then(|()| parser::parse_item(text, chunk))
        } else {
            Err(parser::unknown_item(text, chunk))
        };
        match parsed {
            Ok((item, more)) => {
                if chunk.blank_before {
                    program.blank_before_items.push(program.items.len());
                }
                program.items.push(item);
                diags.extend(more);
            }
            Err(d) => {
                diags.push(d);
                program.broken.push(recover::broken_item(text, chunk));
            }
        }
    }
    let diags = diags.into_iter().map(|d| d.in_file(file)).collect();
    (program, diags)
}

/// Turn a file's bytes into a [`SourceFile`], or say where it stops being UTF-8.
pub fn decode(name: &str, bytes: Vec<u8>) -> Result<Arc<SourceFile>, Diag> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            // Keep the readable prefix so the label can point at the offending byte.
            let valid = String::from_utf8_lossy(&bytes[..at]).into_owned();
            let file = SourceFile::new(name, valid);
            Err(Diag::error(
                "glassbox::not_utf8",
                format!("{name} is not UTF-8 text: byte {at} (line {line}) is not valid UTF-8"),
            )
            .label(Span::new(at, at), "the text stops being UTF-8 here")
            .help("model files must be UTF-8; re-save the file as UTF-8")
            .in_file(&file))
        }
    }
}
