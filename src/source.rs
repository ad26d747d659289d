//! Source files and byte spans.
//!
//! Every stage after parsing points back into the model text with a [`Span`]: a half-open byte
//! range into one [`SourceFile`]. Line and column numbers are computed only when a diagnostic is
//! shown, so the core never carries them around.

use std::sync::Arc;

/// A half-open byte range `start..end` into a source text.
///
/// Two spans always compare equal: a span says *where* something was written, never *what* it
/// means, so two syntax trees that say the same thing are equal wherever their text sits (this
/// is what makes `parse(fmt(src)) == parse(src)` a meaningful test). Compare `range()` when the
/// position itself is under test.
#[derive(Clone, Copy, Debug, Default, Eq, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _other: &Span) -> bool {
        true
    }
}

/// Consistent with `PartialEq`: all spans are equal, so all hash alike.
impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _state: &mut H) {}
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Shift by `offset` bytes (a chunk parsed on its own, placed back into its file).
    pub fn shifted(self, offset: usize) -> Span {
        Span::new(self.start + offset, self.end + offset)
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> miette::SourceSpan {
        (s.start, s.len()).into()
    }
}

/// One model file (or an embedded stdlib module): its display name and its text.
#[derive(Debug)]
pub struct SourceFile {
    /// What diagnostics call the file: the path as the user gave it, or `<stdlib>/nn.gbx`.
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            name: name.into(),
            text: text.into(),
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The byte offset where the line holding `offset` starts.
    pub fn line_start(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    }

    /// The byte offset where the line holding `offset` ends (before its `\r\n` or `\n`).
    pub fn line_end(&self, offset: usize) -> usize {
        let bytes = self.text.as_bytes();
        let offset = offset.min(bytes.len());
        let end = bytes[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| offset + i);
        if end > offset && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// How the core reaches files it must look at (imported model files, data files), so the core
/// itself does no IO: the CLI passes [`DiskLoader`], tests pass an in-memory map.
pub trait Loader {
    /// The bytes of a file, or the OS error (shown to the user with the resolved path).
    fn read(&self, path: &std::path::Path) -> std::io::Result<Vec<u8>>;
}

/// Reads from the file system.
pub struct DiskLoader;

impl Loader for DiskLoader {
    fn read(&self, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// Files held in memory, by path: for tests, and for front ends that hold buffers (the REPL).
#[derive(Debug, Default)]
pub struct MemoryLoader(pub std::collections::HashMap<std::path::PathBuf, Vec<u8>>);

impl Loader for MemoryLoader {
    fn read(&self, path: &std::path::Path) -> std::io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not in memory"))
    }
}
