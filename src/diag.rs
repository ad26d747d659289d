//! Diagnostics: every error a user can cause is a [`Diag`] value.
//!
//! Architecture Invariant: parsing, checking, lowering and (later) solving and training never
//! panic on user input; they return `Diag`s. A `Diag` has a stable code
//! (`glassbox::<kind>`), a message, labelled spans into one source file, and a help line.
//! The core builds them; the front ends (CLI, REPL) render them with miette or as JSON.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::source::{SourceFile, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A labelled span. The first label of a diagnostic is the primary one: tests assert its span.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Diag {
    /// Stable code, `glassbox::<kind>`; the list lives in `docs/language.md` ("Diagnostic codes").
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// The file the labels point into; `None` for errors with no place in a model file.
    pub file: Option<Arc<SourceFile>>,
}

impl Diag {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diag {
        Diag {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            file: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diag {
        Diag {
            severity: Severity::Warning,
            ..Diag::error(code, message)
        }
    }

    pub fn label(mut self, span: Span, text: impl Into<String>) -> Diag {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    pub fn in_file(mut self, file: &Arc<SourceFile>) -> Diag {
        self.file = Some(file.clone());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span, if any.
    pub fn span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    /// A plain, serialisable view for `--format json` and for tests.
    pub fn to_json(&self) -> DiagJson {
        let place = |span: Span| {
            self.file.as_ref().map(|f| {
                let (line, column) = f.line_col(span.start);
                let (end_line, end_column) = f.line_col(span.end);
                JsonPos {
                    line,
                    column,
                    end_line,
                    end_column,
                }
            })
        };
        DiagJson {
            code: self.code,
            severity: self.severity,
            message: self.message.clone(),
            file: self.file.as_ref().map(|f| f.name.clone()),
            labels: self
                .labels
                .iter()
                .map(|l| JsonLabel {
                    text: l.text.clone(),
                    start: l.span.start,
                    end: l.span.end,
                    pos: place(l.span),
                })
                .collect(),
            help: self.help.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DiagJson {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: Option<String>,
    pub labels: Vec<JsonLabel>,
    pub help: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub text: String,
    pub start: usize,
    pub end: usize,
    #[serde(flatten)]
    pub pos: Option<JsonPos>,
}

#[derive(Debug, Serialize)]
pub struct JsonPos {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

impl miette::Diagnostic for Diag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.file.as_ref().map(|f| f as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let file = self.file.as_ref()?;
        let primary = self.labels.first()?;
        // A label past `MAX_DRAWN_COLUMN` is drawn alone, in a window of its line
        // (`SourceFile::read_span`), cut to that line: miette would pad to its column with a
        // format width, which panics past 65 535. The JSON output keeps every label as it is.
        if self
            .labels
            .iter()
            .any(|l| l.span.start - file.line_start(l.span.start) > MAX_DRAWN_COLUMN)
        {
            let end = primary.span.end.min(file.line_end(primary.span.start));
            let text = (!primary.text.is_empty()).then(|| primary.text.clone());
            let span = Span::new(primary.span.start, end.max(primary.span.start));
            return Some(Box::new(std::iter::once(
                miette::LabeledSpan::new_primary_with_span(text, span),
            )));
        }
        Some(Box::new(self.labels.iter().enumerate().map(|(i, l)| {
            let text = (!l.text.is_empty()).then(|| l.text.clone());
            if i == 0 {
                miette::LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                miette::LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

/// The furthest into its line (in bytes) a label may start and still be drawn under the whole
/// line. miette pads up to a label's column with a `format!` width, which panics past 65 535
/// columns; a byte is drawn at most 4 columns wide (a tab), so this keeps far below that.
const MAX_DRAWN_COLUMN: usize = 4096;

/// How many bytes of an overlong line are shown on each side of a label past that column.
const WINDOW_AROUND_LABEL: usize = 40;

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

impl miette::SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let (start, end) = (span.offset(), span.offset() + span.len());
        if context_lines_before > 0 && end <= self.text.len() {
            let line_start = self.line_start(start);
            if start - line_start > MAX_DRAWN_COLUMN {
                // Only a window of an overlong line, so the label's column stays small.
                let from = floor_char_boundary(&self.text, start - WINDOW_AROUND_LABEL);
                let to = (end + WINDOW_AROUND_LABEL).min(self.line_end(end)).max(end);
                let to = ceil_char_boundary(&self.text, to);
                let line = self.text.as_bytes()[..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Ok(Box::new(miette::MietteSpanContents::new_named(
                    self.name.clone(),
                    &self.text.as_bytes()[from..to],
                    (from, to - from).into(),
                    line,
                    from - line_start,
                    1,
                )));
            }
        }
        let contents = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}

/// A size as diagnostics write it, in groups of three digits: `16 777 216`.
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// "Did you mean": the closest candidate by Jaro–Winkler similarity, if it is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, c)| *score >= 0.8 && *c != word)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(d: &Diag) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        let mut out = String::new();
        handler.render_report(&mut out, d).expect("renders");
        out
    }

    #[test]
    fn labels_far_into_a_long_line_are_drawn_in_a_window_of_it() {
        // miette pads to a label's column with a format width, which panics past 65 535.
        let far = 70_000;
        let text = format!("a{}b{}c\nnext line\n", " ".repeat(far), "\t".repeat(far));
        let file = SourceFile::new("long.gbx", text);
        let b = far + 1;
        let d = Diag::error("glassbox::test", "far")
            .label(Span::new(b, b + 1), "here")
            .label(Span::new(0, 1), "and here")
            .label(Span::new(b + 1 + far, b + 2 + far), "past the tabs")
            .help("h")
            .in_file(&file);
        let out = render(&d);
        assert!(
            out.contains("long.gbx:1:70002") && out.contains("here"),
            "{out}"
        );
        assert!(out.lines().all(|l| l.len() < 400), "{out}");
        // The JSON view keeps every label.
        assert_eq!(d.to_json().labels.len(), 3);
        // A primary label near the start is drawn as before, and alone.
        let near = Diag::error("glassbox::test", "near")
            .label(Span::new(0, 1), "start")
            .label(Span::new(b, b + 1), "far")
            .in_file(&file);
        let out = render(&near);
        assert!(out.contains("start") && !out.contains("far\n"), "{out}");
    }

    #[test]
    fn sizes_are_grouped_in_threes() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1 000");
        assert_eq!(grouped(90_000_000_000), "90 000 000 000");
    }
}
