//! The mutation engine: a seeded sequence of edits, at the level of lines, tokens and bytes,
//! chosen to reach the places where a compiler's assumptions hide — extreme numbers, names
//! used as something else, unbalanced brackets, cut-off files, two models spliced together.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// Numbers that have broken compilers before: zero of both signs, the ends of `f64`, a
/// subnormal, spellings of NaN and infinity, integers past `u32`, `usize` and `f64` precision.
const EXTREME_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1e308",
    "-1e308",
    "1e309",
    "1e-320",
    "5e-324",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e-300",
    "100000000000",
    "4294967296",
    "18446744073709551616",
    "9007199254740993",
    "16777217",
    "4194305",
    "-1",
    "1",
    "2",
    "0.5",
    "1e6",
    "99999999999999999999999",
    "0x10",
    "1.",
    ".5",
    "1e",
    "1e+",
    "00",
    "1_000",
];

/// Brackets, operators and separators the grammar has, inserted where they do not belong.
const PUNCTUATION: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ",", ";", "=", "+", "-", "*", "/", "^", "@", "'", ":", "..", "<",
    ">", "==", "!", "|", "\"", "#", "\\", ".", " dt ", " dW ", "d", "\n", "\t", "\r\n",
];

/// Words of the language, so mutants reach the checker as often as the parser.
const KEYWORDS: &[&str] = &[
    "model", "state", "param", "const", "fn", "net", "data", "solve", "over", "minimize", "train",
    "use", "input", "label", "output", "learn", "mlp", "linear", "csv", "table", "tsit5", "rk4",
    "euler", "rodas5", "sosri", "em", "mse", "adam", "windows", "sum", "exp", "log", "sqrt",
    "tanh", "sin", "softplus", "t", "dt", "dW",
];

/// A lexical piece of the text: enough structure to mutate names and numbers as units.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Name,
    Number,
    Space,
    Other,
}

fn tokens(text: &str) -> Vec<(Kind, String)> {
    let mut out: Vec<(Kind, String)> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let kind = if c.is_alphabetic() || c == '_' {
            Kind::Name
        } else if c.is_ascii_digit() {
            Kind::Number
        } else if c.is_whitespace() {
            Kind::Space
        } else {
            Kind::Other
        };
        let mut tok = c.to_string();
        while let Some(&n) = chars.peek() {
            let more = match kind {
                Kind::Name => n.is_alphanumeric() || n == '_',
                Kind::Number => {
                    n.is_ascii_digit()
                        || n == '.'
                        || n == 'e'
                        || n == 'E'
                        || ((n == '-' || n == '+') && tok.ends_with(['e', 'E']))
                }
                Kind::Space => n.is_whitespace() && n != '\n' && c != '\n',
                Kind::Other => false,
            };
            if !more {
                break;
            }
            tok.push(n);
            chars.next();
        }
        out.push((kind, tok));
    }
    out
}

/// Applies one to four random mutations to `text`; `other` is a second seed for splicing.
/// Mostly one: a single edit keeps many mutants valid, so they reach the checker and solver.
pub fn mutate(rng: &mut ChaCha8Rng, text: &str, other: &str) -> String {
    let mut text = text.to_string();
    let edits = if rng.random_bool(0.6) {
        1
    } else {
        rng.random_range(2..=4)
    };
    for _ in 0..edits {
        text = mutate_once(rng, &text, other);
    }
    text
}

fn mutate_once(rng: &mut ChaCha8Rng, text: &str, other: &str) -> String {
    match rng.random_range(0..100) {
        0..10 => lines(rng, text),
        10..25 => replace_number(rng, text),
        25..40 => replace_name(rng, text),
        40..55 => insert_token(rng, text),
        55..70 => token_edit(rng, text),
        70..80 => bytes(rng, text),
        80..85 => truncate(rng, text),
        85..91 => splice(rng, text, other),
        91..95 => overlong(rng, text),
        _ => nest(rng, text),
    }
}

/// Delete, duplicate or swap whole lines.
fn lines(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let i = rng.random_range(0..lines.len());
    let j = rng.random_range(0..lines.len());
    match rng.random_range(0..3) {
        0 => {
            lines.remove(i);
        }
        1 => lines.insert(j, lines[i]),
        _ => lines.swap(i, j),
    }
    lines.join("\n")
}

fn join(toks: &[(Kind, String)]) -> String {
    toks.iter().map(|(_, t)| t.as_str()).collect()
}

fn positions(toks: &[(Kind, String)], kind: Kind) -> Vec<usize> {
    (0..toks.len()).filter(|&i| toks[i].0 == kind).collect()
}

/// A number becomes an extreme one (or, rarely, a name or a string of digits).
fn replace_number(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut toks = tokens(text);
    let Some(&i) = positions(&toks, Kind::Number).choose(rng) else {
        return insert_token(rng, text);
    };
    toks[i].1 = match rng.random_range(0..10) {
        0 => "9".repeat(rng.random_range(10..400)),
        1 => format!("{}", rng.random::<u64>()),
        _ => EXTREME_NUMBERS.choose(rng).map_or("0", |s| s).to_string(),
    };
    join(&toks)
}

/// A name becomes another name from the same file (a state used as a net, a param as a
/// function), or a keyword.
fn replace_name(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut toks = tokens(text);
    let names = positions(&toks, Kind::Name);
    let Some(&i) = names.choose(rng) else {
        return insert_token(rng, text);
    };
    toks[i].1 = if rng.random_bool(0.75) {
        let j = *names.choose(rng).unwrap_or(&i);
        toks[j].1.clone()
    } else {
        KEYWORDS.choose(rng).map_or("x", |s| s).to_string()
    };
    join(&toks)
}

/// A bracket, operator, keyword, name or extreme number inserted at a token boundary.
fn insert_token(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut toks = tokens(text);
    let at = rng.random_range(0..=toks.len());
    let new = match rng.random_range(0..4) {
        0 | 1 => PUNCTUATION.choose(rng).map_or("(", |s| s).to_string(),
        2 => KEYWORDS.choose(rng).map_or("x", |s| s).to_string(),
        _ => EXTREME_NUMBERS.choose(rng).map_or("0", |s| s).to_string(),
    };
    toks.insert(at, (Kind::Other, new));
    join(&toks)
}

/// Delete, duplicate or swap tokens (spaces skipped, so the edit is to the code).
fn token_edit(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut toks = tokens(text);
    let code: Vec<usize> = (0..toks.len())
        .filter(|&i| toks[i].0 != Kind::Space)
        .collect();
    let (Some(&i), Some(&j)) = (code.choose(rng), code.choose(rng)) else {
        return text.to_string();
    };
    match rng.random_range(0..3) {
        0 => {
            let n = rng.random_range(1..=3).min(toks.len() - i);
            toks.drain(i..i + n);
        }
        1 => {
            let t = toks[i].clone();
            toks.insert(j, t);
        }
        _ => toks.swap(i, j),
    }
    join(&toks)
}

/// Byte-level edits: delete, duplicate, flip or insert bytes (the result read back as UTF-8
/// lossily, as a file's text must be valid UTF-8 to reach the parser at all).
fn bytes(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut b = text.as_bytes().to_vec();
    if b.is_empty() {
        b.push(b'x');
    }
    let i = rng.random_range(0..b.len());
    let n = rng.random_range(1..=8).min(b.len() - i);
    match rng.random_range(0..4) {
        0 => {
            b.drain(i..i + n);
        }
        1 => {
            let dup: Vec<u8> = b[i..i + n].to_vec();
            b.splice(i..i, dup);
        }
        2 => b[i] ^= 1 << rng.random_range(0..8),
        _ => {
            let special: &[&[u8]] = &[
                b"\0",
                b"\xef\xbb\xbf",
                "é".as_bytes(),
                "∂".as_bytes(),
                b"\r",
            ];
            let ins = special.choose(rng).map_or(&b"\0"[..], |s| s);
            b.splice(i..i, ins.iter().copied());
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn truncate(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut at = rng.random_range(0..=text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].to_string()
}

/// The head of one file and the tail of another: declarations meet equations they never met.
fn splice(rng: &mut ChaCha8Rng, text: &str, other: &str) -> String {
    let a: Vec<&str> = text.lines().collect();
    let b: Vec<&str> = other.lines().collect();
    let i = rng.random_range(0..=a.len());
    let j = rng.random_range(0..=b.len());
    let mut out = a[..i].to_vec();
    out.extend_from_slice(&b[j..]);
    out.join("\n")
}

/// A line pushed past miette's 65 535 columns, or one very long expression.
fn overlong(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut toks = tokens(text);
    let at = rng.random_range(0..=toks.len());
    let filler = match rng.random_range(0..3) {
        0 => " ".repeat(70_000),
        1 => "x + ".repeat(rng.random_range(500..1_500)),
        _ => format!("{}@", "a".repeat(70_000)),
    };
    toks.insert(at, (Kind::Other, filler));
    join(&toks)
}

/// Brackets nested around the limit of 64 (and past it).
fn nest(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut toks = tokens(text);
    let at = rng.random_range(0..=toks.len());
    let depth = rng.random_range(50..200);
    let (open, close) = if rng.random_bool(0.5) {
        ("(", ")")
    } else {
        ("[", "]")
    };
    let body = format!(
        "{}1{}",
        open.repeat(depth),
        close.repeat(rng.random_range(0..=depth))
    );
    toks.insert(at, (Kind::Other, body));
    join(&toks)
}
