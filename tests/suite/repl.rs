//! REPL transcripts: every `tests/repl/NAME.in` is piped into `glassbox repl` (from the
//! crate root, so `:load examples/...` works) and its stdout must equal `NAME.out`. When
//! `NAME.err` exists, the run must fail (status 1) with exactly that on stderr; otherwise it
//! must succeed with nothing on stderr. Timings vary, so `compile time` and `solve time`
//! lines are compared by label only. `$TMP` in an input names a fresh temporary directory (for
//! `:save`), and that directory's path reads `$TMP` again in the output. `UPDATE_REPL=1 cargo test --test suite repl::` rewrites the
//! expected files from what the binary prints (review the diff before committing).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("compile time") || l.starts_with("solve time") {
                l.split("  ").next().unwrap_or(l).to_string() + " <elapsed>"
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn run(input: &Path, data_home: &Path, tmp: &Path) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .arg("repl")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("XDG_DATA_HOME", data_home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run glassbox");
    let text = std::fs::read_to_string(input).expect("read transcript input");
    let tmp = tmp.display().to_string();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.replace("$TMP", &tmp).as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let back = |b: &[u8]| String::from_utf8_lossy(b).replace(&tmp, "$TMP");
    (out.status.success(), back(&out.stdout), back(&out.stderr))
}

#[test]
fn transcripts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/repl");
    let data_home = std::env::temp_dir().join(format!("glassbox-repl-test-{}", std::process::id()));
    let update = std::env::var_os("UPDATE_REPL").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/repl")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "in"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5, "the transcripts are missing");
    let mut failures = Vec::new();
    for input in &inputs {
        let tmp = data_home.join("tmp");
        let (ok, stdout, stderr) = run(input, &data_home, &tmp);
        let (stdout, stderr) = (normalise(&stdout), normalise(&stderr));
        let out_path = input.with_extension("out");
        let err_path = input.with_extension("err");
        if update {
            std::fs::write(&out_path, &stdout).expect("write .out");
            if ok {
                let _ = std::fs::remove_file(&err_path);
            } else {
                std::fs::write(&err_path, &stderr).expect("write .err");
            }
            continue;
        }
        let want_out = std::fs::read_to_string(&out_path).unwrap_or_default();
        let want_err = std::fs::read_to_string(&err_path).ok();
        let name = input.file_stem().unwrap_or_default().to_string_lossy();
        if stdout != want_out {
            failures.push(format!(
                "{name}: stdout differs\n--- want\n{want_out}--- got\n{stdout}"
            ));
        }
        match &want_err {
            Some(_) if ok => failures.push(format!("{name}: expected failure, got success")),
            Some(want) if *want != stderr => failures.push(format!(
                "{name}: stderr differs\n--- want\n{want}--- got\n{stderr}"
            )),
            None if !ok || stderr.trim() != "" => failures.push(format!(
                "{name}: expected success with no diagnostics, got:\n{stderr}"
            )),
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&data_home);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `:train 3` then `:train 2` continues one run: the saved weights equal those of `:train 5`,
/// byte for byte, and differ from the untrained values.
#[test]
fn train_in_steps_equals_one_run() {
    let tmp = std::env::temp_dir().join(format!("glassbox-repl-steps-{}", std::process::id()));
    let program = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/repl/train.in"),
    )
    .expect("train.in");
    let items: Vec<&str> = program
        .lines()
        .filter(|l| !l.starts_with(':') && !l.starts_with('#'))
        .collect();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/lv.csv");
    let weights = |steps: &[&str], name: &str| {
        let mut repl = glassbox::repl::Repl::default();
        for item in &items {
            let item = item.replace("examples/data/lv.csv", &data.display().to_string());
            repl.handle(&item).expect("item");
        }
        for s in steps {
            repl.handle(s).expect("train");
        }
        let dir = tmp.join(name);
        repl.handle(&format!(":save {}", dir.display()))
            .expect("save");
        std::fs::read(dir.join("weights.safetensors")).expect("weights")
    };
    let split = weights(&[":train 3", ":train 2"], "split");
    let whole = weights(&[":train 5"], "whole");
    let short = weights(&[":train 1"], "short");
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(split, whole);
    assert_ne!(split, short);
}

/// docs/repl.md's opening transcript says what `:load examples/lorenz.gbx` prints (the item
/// count once read 11 where the REPL says 10).
#[test]
fn the_docs_load_line_is_the_repl_s() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/repl.md")).expect("docs/repl.md");
    let out = std::fs::read_to_string(root.join("tests/repl/lorenz.out")).expect("lorenz.out");
    let loaded = out.lines().next().expect("lorenz.out is empty");
    assert!(
        loaded.starts_with("loaded examples/lorenz.gbx"),
        "lorenz.out starts with {loaded:?}"
    );
    assert!(
        doc.lines().any(|l| l == loaded),
        "docs/repl.md does not show `{loaded}`"
    );
}

/// On a terminal (a pty from util-linux `script`), a line with an open bracket is continued
/// under the `...> ` prompt, and the joined input is one item.
#[test]
fn a_continued_line_shows_its_prompt_on_a_terminal() {
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("skipped: no util-linux `script` to run the REPL on a pty");
        return;
    }
    let data_home = std::env::temp_dir().join(format!("glassbox-repl-pty-{}", std::process::id()));
    let exe = env!("CARGO_BIN_EXE_glassbox");
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &format!("{exe} repl"), "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .env("XDG_DATA_HOME", &data_home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    let mut stdin = child.stdin.take().expect("stdin");
    // One line at a time: the editor reads what the pty delivers as typed keys.
    for line in [
        "state x = 1\n",
        "param k = (2 +\n",
        "3)\n",
        "k * 2\n",
        ":quit\n",
    ] {
        stdin.write_all(line.as_bytes()).expect("type a line");
        stdin.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let _ = std::fs::remove_dir_all(&data_home);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gbx> "), "no prompt:\n{text}");
    assert!(text.contains("...> "), "no continuation prompt:\n{text}");
    assert!(
        text.contains("10 : scalar"),
        "`k * 2` after the joined item:\n{text}"
    );
}
