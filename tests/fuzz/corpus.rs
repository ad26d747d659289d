//! The seed corpus: every `examples/*.gbx` and `tests/diagnostics/*.gbx`, and the files they
//! reach (data files, imported models) held in memory, so a mutated path can never make the
//! checker read outside the repository — or read the disk at all, 100 000 times.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use glassbox::source::MemoryLoader;

/// One seed: the name the checker resolves relative paths against (repository-relative, as a
/// user would type it from the root) and its text.
pub struct Seed {
    pub name: String,
    pub text: String,
}

pub struct Corpus {
    pub seeds: Vec<Seed>,
    pub loader: MemoryLoader,
}

/// The folders whose `*.gbx` files are seeds; each one's `data/` is served by the loader.
const SEED_DIRS: &[&str] = &["examples", "tests/diagnostics"];

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl Corpus {
    pub fn load() -> Corpus {
        let mut seeds = Vec::new();
        let mut files = HashMap::new();
        for dir in SEED_DIRS {
            for path in sorted_files(&root().join(dir)) {
                let rel = format!("{dir}/{}", file_name(&path));
                if path.extension().is_some_and(|e| e == "gbx") {
                    let text = std::fs::read_to_string(&path).expect("a seed is UTF-8");
                    files.insert(PathBuf::from(&rel), text.clone().into_bytes());
                    seeds.push(Seed { name: rel, text });
                }
            }
            for path in sorted_files(&root().join(dir).join("data")) {
                let rel = format!("{dir}/data/{}", file_name(&path));
                files.insert(PathBuf::from(rel), std::fs::read(&path).expect("data file"));
            }
        }
        assert!(
            seeds.len() > 10,
            "the corpus is missing: {} seeds",
            seeds.len()
        );
        Corpus {
            seeds,
            loader: MemoryLoader(files),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
