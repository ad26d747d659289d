//! The language reference and the examples stay parseable: every fenced code block of
//! `docs/language.md` and every `examples/*.gbx` must parse without a diagnostic.
//!
//! (Checking, not just parsing, of the examples belongs to the end-to-end suite; the blocks of
//! the reference are often fragments that use names they do not declare.)

use std::path::Path;

use glassbox::source::SourceFile;

fn assert_parses(name: &str, text: &str) {
    let file = SourceFile::new(name, text);
    let (_, diags) = glassbox::syntax::parse(&file);
    let shown: Vec<String> = diags
        .into_iter()
        .map(|d| format!("{:?}", miette::Report::new(d)))
        .collect();
    assert!(shown.is_empty(), "{name}:\n{text}\n{}", shown.join("\n"));
}

/// The fenced code blocks of a Markdown text, with their first line number.
fn code_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((n + 2, String::new())),
            }
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

#[test]
fn every_code_block_of_the_reference_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/language.md")).expect("docs/language.md");
    let blocks = code_blocks(&doc);
    assert!(blocks.len() > 20, "found only {} code blocks", blocks.len());
    for (line, text) in blocks {
        assert_parses(&format!("docs/language.md:{line}"), &text);
    }
}

#[test]
fn every_example_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "gbx") {
            let text = std::fs::read_to_string(&path).expect("model file");
            assert_parses(&path.display().to_string(), &text);
            count += 1;
        }
    }
    assert!(count >= 8, "every example, found {count}");
}
