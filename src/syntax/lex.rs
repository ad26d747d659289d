//! Before pest: split a file into items, collect comments, and reject what would make pest (or
//! any later recursive pass) slow or deep.
//!
//! Strings and comments never span lines, so each line is scanned on its own. An item starts on
//! a line whose first token is an item keyword or an equation head (`dX/dt =`, `dX =`), or on an
//! unindented line that reads `word word` (a misspelt keyword, reported as `unknown_item`); every
//! other line continues the item above. Each item is then pre-scanned: brackets must match and
//! nest at most [`MAX_NESTING`] deep, strings must be closed and use known escapes, and the item
//! may hold at most [`MAX_OPERATORS`] operators. Invariant: the text pest sees has passed this
//! scan, so pest's recursion is bounded by the nesting bound and the Pratt parser's (and every
//! later pass's) by the operator bound.

use crate::diag::Diag;
use crate::source::Span;

use super::ast::Comment;

/// Deepest bracket nesting accepted in one item.
pub const MAX_NESTING: usize = 64;
/// Most operators (`+ - * / @ ^`) accepted in one item.
pub const MAX_OPERATORS: usize = 1000;

/// Words that start an item.
pub const ITEM_KEYWORDS: &[&str] = &[
    "model", "use", "state", "param", "const", "input", "label", "net", "data", "fn", "output",
    "solve", "minimize", "train",
];

/// Words that can never be names.
pub const RESERVED: &[&str] = &[
    "model", "use", "state", "param", "const", "input", "label", "net", "data", "fn", "output",
    "solve", "minimize", "train", "learn", "over", "at", "in", "dt", "dW",
];

/// One item's text: `start..code_end` is what pest parses (trailing comments and blank lines
/// cut off, so a huge trailing comment never reaches pest).
#[derive(Debug)]
pub struct Chunk {
    pub start: usize,
    pub code_end: usize,
    /// A blank line separated this item from what came before it.
    pub blank_before: bool,
    /// The first token is an item keyword or an equation head.
    pub known_start: bool,
}

/// The result of [`split`]: items to parse and every comment of the file.
pub struct Split {
    pub chunks: Vec<Chunk>,
    pub comments: Vec<Comment>,
}

/// One scanned line.
struct Line {
    start: usize,
    /// End of the code part: before the comment, trailing whitespace trimmed.
    code_end: usize,
    /// Byte offset of the first non-whitespace character, if the line has code.
    first: Option<usize>,
    comment: Option<(usize, usize)>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The identifier-like word at `at`, as a byte range.
pub fn word_at(text: &str, at: usize) -> std::ops::Range<usize> {
    let bytes = text.as_bytes();
    let mut end = at;
    while end < bytes.len() && is_ident_char(bytes[end]) {
        end += 1;
    }
    at..end
}

fn scan_line(text: &str, start: usize, end: usize) -> Line {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut in_string = false;
    let mut comment = None;
    while i < end {
        let c = bytes[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'#' || (c == b'/' && bytes.get(i + 1) == Some(&b'/')) {
            comment = Some((i, end));
            break;
        }
        i += 1;
    }
    let code_stop = comment.map_or(end, |(s, _)| s);
    let code = &text[start..code_stop];
    let trimmed_start = code.len() - code.trim_start().len();
    let code_end = start + code.trim_end().len();
    let first = (code_end > start + trimmed_start).then_some(start + trimmed_start);
    Line {
        start,
        code_end: code_end.max(start),
        first,
        comment,
    }
}

/// Does the code starting at `first` begin an item?
/// Returns `(starts_item, known_start)`.
fn item_start(text: &str, line: &Line, first: usize) -> (bool, bool) {
    let code = &text[first..line.code_end];
    let bytes = code.as_bytes();
    let word = word_at(code, 0);
    if word.is_empty() {
        return (false, false);
    }
    let w = &code[word.clone()];
    if ITEM_KEYWORDS.contains(&w) {
        return (true, true);
    }
    // Equation head: `dX/dt =` or `dX =` (not `==`).
    if w.len() > 1 && w.starts_with('d') && is_ident_start(bytes[1]) {
        let rest = code[word.end..].trim_start();
        let after_slash = rest.strip_prefix('/').map(str::trim_start);
        if let Some(r) = after_slash {
            let r = r.strip_prefix("dt").unwrap_or("");
            if r.trim_start().starts_with('=') {
                return (true, true);
            }
        } else if rest.starts_with('=') && !rest.starts_with("==") {
            return (true, true);
        }
    }
    // An unindented `word word`: most likely a misspelt keyword.
    let unindented = first == line.start;
    let rest = &code[word.end..];
    let next = rest.trim_start();
    if unindented && rest.len() > next.len() && next.bytes().next().is_some_and(is_ident_start) {
        return (true, false);
    }
    (false, false)
}

/// Split `text` into item chunks and comments (spans are file offsets).
pub fn split(text: &str) -> Split {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut comments = Vec::new();
    let mut saw_blank = false;
    let mut any_before = false;
    let mut pos = 0;
    while pos <= text.len() {
        let nl = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let line = scan_line(text, pos, nl);
        let blank_before = saw_blank && any_before;
        match line.first {
            Some(first) => {
                let (starts, known) = item_start(text, &line, first);
                if starts || chunks.is_empty() {
                    chunks.push(Chunk {
                        start: first,
                        code_end: line.code_end,
                        blank_before,
                        known_start: known,
                    });
                } else if let Some(last) = chunks.last_mut() {
                    last.code_end = line.code_end;
                }
                if let Some((s, e)) = line.comment {
                    comments.push(make_comment(text, s, e, false, false));
                }
                saw_blank = false;
                any_before = true;
            }
            None => match line.comment {
                Some((s, e)) => {
                    comments.push(make_comment(text, s, e, true, blank_before));
                    saw_blank = false;
                    any_before = true;
                }
                None => saw_blank = true,
            },
        }
        pos = nl + 1;
    }
    Split { chunks, comments }
}

fn make_comment(text: &str, start: usize, end: usize, own_line: bool, blank: bool) -> Comment {
    let marker = if text[start..].starts_with('#') { 1 } else { 2 };
    let body = text[start + marker..end].trim_end();
    Comment {
        text: body.to_string(),
        own_line,
        blank_before: blank,
        span: Span::new(start, start + marker + body.len()),
    }
}

/// Check one chunk's brackets, strings and operator count before pest sees it.
pub fn prescan(text: &str, chunk: &Chunk) -> Result<(), Diag> {
    let bytes = text.as_bytes();
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut operators = 0usize;
    let mut i = chunk.start;
    let end = chunk.code_end;
    while i < end {
        let c = bytes[i];
        match c {
            b'"' => i = check_string(text, i, end)?,
            b'#' => i = skip_to_newline(bytes, i, end),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_to_newline(bytes, i, end),
            b'(' | b'[' => {
                if stack.len() >= MAX_NESTING {
                    return Err(Diag::error(
                        "glassbox::nesting_too_deep",
                        format!("brackets nest more than {MAX_NESTING} deep"),
                    )
                    .label(Span::new(i, i + 1), "this bracket is too deep")
                    .help("split the expression with `fn` definitions or intermediate names"));
                }
                stack.push((c, i));
            }
            b')' | b']' => {
                let want = if c == b')' { b'(' } else { b'[' };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    Some((open, at)) => {
                        let close = if open == b'(' { ')' } else { ']' };
                        return Err(Diag::error(
                            "glassbox::unclosed_bracket",
                            format!("expected `{close}`, found `{}`", c as char),
                        )
                        .label(Span::new(i, i + 1), format!("expected `{close}` here"))
                        .label(Span::new(at, at + 1), "to close this bracket")
                        .help("close brackets in the order they were opened"));
                    }
                    None => {
                        return Err(Diag::error(
                            "glassbox::unmatched_bracket",
                            format!("`{}` closes no open bracket", c as char),
                        )
                        .label(Span::new(i, i + 1), "nothing to close")
                        .help("remove it, or add the opening bracket it belongs to"));
                    }
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'@' | b'^' => {
                operators += 1;
                if operators > MAX_OPERATORS {
                    return Err(Diag::error(
                        "glassbox::expression_too_long",
                        format!("more than {MAX_OPERATORS} operators in one item"),
                    )
                    .label(Span::new(i, i + 1), "one operator too many")
                    .help("split the expression with `fn` definitions or intermediate names"));
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(&(open, at)) = stack.last() {
        let close = if open == b'(' { ')' } else { ']' };
        return Err(Diag::error(
            "glassbox::unclosed_bracket",
            format!("this `{}` is never closed", open as char),
        )
        .label(
            Span::new(at, at + 1),
            format!("expected a matching `{close}`"),
        )
        .help(format!("add `{close}` where the bracketed part ends")));
    }
    Ok(())
}

/// Returns the index of the last byte of the comment (the loop then steps past it).
fn skip_to_newline(bytes: &[u8], mut i: usize, end: usize) -> usize {
    while i + 1 < end && bytes[i + 1] != b'\n' {
        i += 1;
    }
    i
}

/// Check the string opening at `open`; returns the index of its closing quote.
fn check_string(text: &str, open: usize, end: usize) -> Result<usize, Diag> {
    let bytes = text.as_bytes();
    let mut i = open + 1;
    while i < end && bytes[i] != b'\n' {
        match bytes[i] {
            b'"' => return Ok(i),
            b'\\' => {
                let next = text[i + 1..].chars().next();
                match next {
                    Some('"') | Some('\\') => i += 1,
                    other => {
                        let width = 1 + other.filter(|c| *c != '\n').map_or(0, char::len_utf8);
                        return Err(Diag::error(
                            "glassbox::bad_escape",
                            "unknown escape in a string",
                        )
                        .label(Span::new(i, i + width), "not an escape")
                        .help(r#"the escapes are `\"` and `\\`; write `\\` for a backslash"#));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    let line_end = text[open..]
        .find(['\n', '\r'])
        .map_or(text.len(), |n| open + n);
    Err(Diag::error(
        "glassbox::unterminated_string",
        "this string is never closed",
    )
    .label(Span::new(open, line_end), "no closing `\"` on this line")
    .help("close the string with `\"`; strings cannot span lines"))
}
