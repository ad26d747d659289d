//! What a broken item would have declared, read from its tokens without pest, so the checker can
//! run on the rest of the file without reporting follow-on errors ("`x` is not defined" after
//! `state x = (1`).
//!
//! The scan is deliberately shallow: identifiers, brackets, commas and `=`, with strings and
//! comments skipped. Invariant: it never fails and never panics, whatever the chunk holds (the
//! chunk may have failed `lex::prescan`: brackets need not match, strings need not close); a
//! name it cannot find is simply not recorded.

use super::ast::{BrokenItem, Ident};
use super::lex::{self, Chunk, ITEM_KEYWORDS, RESERVED};
use crate::source::Span;

/// Items that declare names in a comma-separated list (`state x = 1, y = 2`).
const LISTS: &[&str] = &[
    "state", "param", "const", "input", "label", "net", "data", "output",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Word,
    Open,
    Close,
    Comma,
    Assign,
    Slash,
    Other,
}

/// The broken item in `chunk`: its keyword (a misspelt one as the keyword it most resembles,
/// `None` for an equation) and the names it would have declared.
pub fn broken_item(text: &str, chunk: &Chunk) -> BrokenItem {
    let end = chunk.code_end.min(text.len());
    let start = chunk.start.min(end);
    let toks = tokens(text, start, end);
    let span = Span::new(start, end);
    let word = |i: usize| match toks.get(i) {
        Some(&(Tok::Word, s, e)) => text.get(s..e),
        _ => None,
    };
    let Some(first) = word(0) else {
        return BrokenItem {
            keyword: None,
            names: Vec::new(),
            sde: false,
            span,
        };
    };
    if chunk.known_start && !ITEM_KEYWORDS.contains(&first) {
        return equation(text, &toks, span);
    }
    // A misspelt keyword (`stat x = 1`) most likely declares what the keyword would have; a
    // word that resembles none is read as a declaration list, but only names that look
    // declared (followed by `=`, `[`, ...) count, so a stray expression declares nothing.
    let (keyword, strict) = if chunk.known_start {
        (first, false)
    } else {
        match crate::diag::did_you_mean(first, ITEM_KEYWORDS.iter().copied()) {
            Some(k) => (k, false),
            None => (first, true),
        }
    };
    let names = match keyword {
        "fn" => word(1).map(|_| 1).into_iter().collect(),
        k if LISTS.contains(&k) || strict => list_names(text, &toks, strict),
        _ => Vec::new(),
    };
    let names = names
        .into_iter()
        .filter_map(|i| toks.get(i))
        .filter_map(|&(_, s, e)| {
            Some(Ident {
                name: text.get(s..e)?.to_string(),
                span: Span::new(s, e),
            })
        })
        .filter(|id| is_name(&id.name))
        .collect();
    BrokenItem {
        keyword: Some(keyword.to_string()),
        names,
        sde: false,
        span,
    }
}

/// `dX/dt = ...` or `dX = ...`: the state `X`, its span without the leading `d`.
fn equation(text: &str, toks: &[(Tok, usize, usize)], span: Span) -> BrokenItem {
    let mut names = Vec::new();
    let mut sde = false;
    if let Some(&(Tok::Word, s, e)) = toks.first()
        && let Some(name) = text.get(s + 1..e)
        && is_name(name)
    {
        names.push(Ident {
            name: name.to_string(),
            span: Span::new(s + 1, e),
        });
        sde = toks.get(1).is_some_and(|t| t.0 != Tok::Slash);
    }
    BrokenItem {
        keyword: None,
        names,
        sde,
        span,
    }
}

/// Token indices of the declared names of a list: the first word after the keyword, each word
/// right after a comma at bracket depth 0 that is followed by what a declaration continues with
/// (`=`, `[`, `,`, `in`, `learn` or the end), and each word followed by `=` at depth 0.
/// `strict` applies the follow rule to the first word too.
fn list_names(text: &str, toks: &[(Tok, usize, usize)], strict: bool) -> Vec<usize> {
    let declares = |i: usize| match toks.get(i + 1) {
        None => true,
        Some(&(Tok::Assign | Tok::Comma, _, _)) => true,
        Some(&(Tok::Open, s, _)) => text.as_bytes().get(s) == Some(&b'['),
        Some(&(Tok::Word, s, e)) => matches!(text.get(s..e), Some("in" | "learn")),
        Some(_) => false,
    };
    let mut out = Vec::new();
    if toks.get(1).is_some_and(|t| t.0 == Tok::Word) && (!strict || declares(1)) {
        out.push(1);
    }
    // Saturating depth: an unmatched closer (the item may have failed for exactly that) must
    // not hide the names after it.
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(2) {
        match t.0 {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Comma
                if depth == 0
                    && toks.get(i + 1).is_some_and(|n| n.0 == Tok::Word)
                    && declares(i + 1) =>
            {
                out.push(i + 1);
            }
            // `name =` at depth 0 can only start a declarator (named arguments sit inside
            // brackets), so a forgotten comma (`param a = 1 b = 2`) still finds `b`.
            Tok::Word
                if depth == 0
                    && toks.get(i + 1).is_some_and(|n| n.0 == Tok::Assign)
                    && out.last() != Some(&i) =>
            {
                out.push(i);
            }
            _ => {}
        }
    }
    out
}

/// Could this word be a declared name (not a reserved word or a number)?
fn is_name(word: &str) -> bool {
    word.bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && word.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !RESERVED.contains(&word)
}

/// The shallow token stream of `text[start..end]`: strings and comments are skipped; numbers,
/// an unclosed quote and an unclosed bracket are `Other`.
fn tokens(text: &str, start: usize, end: usize) -> Vec<(Tok, usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        let c = bytes[i];
        let (tok, next) = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'"' => {
                let mut j = i + 1;
                while j < end && bytes[j] != b'"' && bytes[j] != b'\n' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                if j < end && bytes[j] == b'"' {
                    i = j + 1;
                    continue;
                }
                // Never closed: the quote itself is the mistake, what follows is still code.
                (Tok::Other, i + 1)
            }
            b'#' => {
                i = skip_line(bytes, i, end);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = skip_line(bytes, i, end);
                continue;
            }
            b'(' | b'[' => (Tok::Open, i + 1),
            b')' | b']' => (Tok::Close, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'/' => (Tok::Slash, i + 1),
            b'=' => (Tok::Assign, i + 1),
            c if c.is_ascii_alphabetic() || c == b'_' => (Tok::Word, lex::word_at(text, i).end),
            c if c.is_ascii_digit() || c == b'.' => {
                // A number, exponent included (`1e-3`), so its letters are not words.
                let mut j = i;
                while j < end && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'.') {
                    let exp = matches!(bytes[j], b'e' | b'E');
                    j += 1;
                    if exp && j < end && matches!(bytes[j], b'+' | b'-') {
                        j += 1;
                    }
                }
                (Tok::Other, j)
            }
            _ => {
                // One character (whole, so a multi-byte one never splits).
                let w = text
                    .get(i..)
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (Tok::Other, i + w)
            }
        };
        let next = next.min(end).max(i + 1);
        out.push((tok, i, next));
        i = next;
    }
    // An opener that is never closed is most likely the mistake: it must not swallow the
    // names after it, so it stops counting as a bracket.
    let mut open = Vec::new();
    for (k, t) in out.iter().enumerate() {
        match t.0 {
            Tok::Open => open.push(k),
            Tok::Close => {
                open.pop();
            }
            _ => {}
        }
    }
    for k in open {
        if let Some(t) = out.get_mut(k) {
            t.0 = Tok::Other;
        }
    }
    out
}

fn skip_line(bytes: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && bytes[i] != b'\n' {
        i += 1;
    }
    i
}
