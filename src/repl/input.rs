//! Reading input: when a line is complete (brackets balanced), whether it is a declaration or
//! an expression, the prompts, and the rustyline helper (tab completion).

use std::borrow::Cow;

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

const ITEM_KEYWORDS: [&str; 14] = [
    "model", "use", "state", "param", "const", "input", "label", "net", "data", "fn", "output",
    "solve", "minimize", "train",
];

/// Words worth completing besides the session's names.
const BUILTINS: [&str; 18] = [
    "exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "softplus", "sqrt", "abs", "sum",
    "mean", "norm", "dot", "jacobian", "mlp", "linear",
];

/// Whether `text` still has an open bracket (so the next line continues it). Brackets inside
/// strings and comments do not count; a stray closing bracket ends the input (the parser then
/// says what is wrong).
pub fn needs_more(text: &str) -> bool {
    let mut depth: i64 = 0;
    let mut in_string = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                '\n' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth > 0
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

/// Whether the input is an item (declaration, equation or clause) rather than an expression:
/// it starts with an item keyword or an equation head `dX/dt =` / `dX =`.
pub fn is_item(text: &str) -> bool {
    let t = text.trim_start();
    let word: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if ITEM_KEYWORDS.contains(&word.as_str()) {
        let rest = &t[word.len()..];
        // `output(…)`-like calls are not items: a keyword is followed by a space or a name.
        return !rest.starts_with('(');
    }
    let Some(state) = word.strip_prefix('d') else {
        return false;
    };
    if state.is_empty() {
        return false;
    }
    let rest = t[word.len()..].trim_start();
    let rest = match rest.strip_prefix('/') {
        Some(r) => match r.trim_start().strip_prefix("dt") {
            Some(r) => r.trim_start(),
            None => return false,
        },
        None => rest,
    };
    rest.starts_with('=') && !rest.starts_with("==")
}

/// The rustyline helper: completion of commands, session names and builtins.
#[derive(Default)]
pub struct ReplHelper {
    /// The session's names, refreshed after every input.
    pub names: Vec<String>,
}

impl ReplHelper {
    fn candidates(&self, line: &str, start: usize, word: &str) -> Vec<String> {
        let at_command = line[..start].trim().is_empty() && word.starts_with(':');
        let mut out: Vec<String> = if at_command {
            super::commands::completions()
                .filter(|c| c.starts_with(word))
                .collect()
        } else {
            self.names
                .iter()
                .map(String::as_str)
                .chain(BUILTINS)
                .chain(ITEM_KEYWORDS)
                .chain(["wrt", "t"])
                .filter(|n| n.starts_with(word) && !word.is_empty())
                .map(str::to_string)
                .collect()
        };
        out.sort();
        out.dedup();
        out
    }
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = line.get(..pos).unwrap_or(line);
        let start = head
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':' || *c == '.'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &head[start..];
        Ok((start, self.candidates(line, start, word)))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

/// Every line is accepted as typed: an open bracket is continued by the session loop, which
/// reads the next line under the continuation prompt ([`CONTINUE`]); rustyline's own
/// multi-line editing would show no prompt on the lines after the first.
impl Validator for ReplHelper {}

/// The prompt of a new input, and of a line that continues one with an open bracket.
pub const PROMPT: &str = "gbx> ";
pub const CONTINUE: &str = "...> ";

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_wait_for_more() {
        assert!(needs_more("net f = mlp(2,"));
        assert!(needs_more("[1, [2,"));
        assert!(!needs_more("[1, 2]"));
        assert!(!needs_more("f(x))"));
        assert!(!needs_more("data d = csv(\"a(b.csv\")"));
        assert!(!needs_more("x # (not code"));
        assert!(needs_more("(x // ]\n"));
    }

    #[test]
    fn items_and_expressions_are_told_apart() {
        for item in [
            "state x = 1",
            "dx/dt = -x",
            "dx / dt = -x",
            "dx = -x dt + 0.1 dW",
            "param a = 1 learn",
            "solve tsit5 over [0, 1]",
        ] {
            assert!(is_item(item), "{item}");
        }
        for expr in [
            "x + 1",
            "dot(a, b)",
            "d",
            "dx",
            "dx == 1",
            "sum([1, 2])",
            "x",
        ] {
            assert!(!is_item(expr), "{expr}");
        }
    }

    #[test]
    fn completion_offers_commands_and_names() {
        let h = ReplHelper {
            names: vec!["sigma".into(), "state_x".into()],
        };
        assert_eq!(h.candidates(":so", 0, ":so"), vec![":solve"]);
        assert_eq!(
            h.candidates("1 + si", 4, "si"),
            vec!["sigma", "sigmoid", "sin"]
        );
        assert!(h.candidates("x + ", 4, "").is_empty());
    }
}
