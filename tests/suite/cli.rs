//! The command line as a user meets it: exit codes, summaries, diagnostics on stderr, JSON for
//! tools, the formatter, and `show`'s math and LaTeX.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn glassbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the glassbox binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn examples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gbx"))
        .map(|p| format!("examples/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// A scratch directory under the target dir (no temp-dir crate needed), fresh per test.
fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target").join("cli-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_passes_every_example_and_summarises_it() {
    let files = examples();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let o = glassbox(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for f in &files {
        assert!(out.contains(&format!("{f} ok")), "{f} missing from:\n{out}");
    }
    assert!(out.contains("parameters  252 learned, 0 fixed"), "{out}");
    assert!(
        out.contains("net         f = mlp(2, 50, 2; act = tanh)"),
        "{out}"
    );
}

#[test]
fn check_reports_a_misspelled_name_with_its_place_and_a_suggestion() {
    let o = glassbox(&["check", "tests/diagnostics/name_misspelled_state.gbx"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("glassbox::undefined_name"), "{err}");
    assert!(err.contains("name_misspelled_state.gbx:3:10"), "{err}");
    assert!(err.contains("did you mean `y`?"), "{err}");
    assert!(err.contains("1 error in 1 file"), "{err}");
}

#[test]
fn check_json_lists_diagnostics_with_positions() {
    let o = glassbox(&[
        "check",
        "--format",
        "json",
        "tests/diagnostics/many_independent.gbx",
        "examples/robertson.gbx",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("valid JSON");
    let files = v.as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["ok"], false);
    let d = &files[0]["diagnostics"][0];
    assert_eq!(d["code"], "glassbox::undefined_name");
    assert_eq!(d["labels"][0]["line"], 5);
    assert_eq!(d["labels"][0]["column"], 16);
    assert!(d["help"].is_string());
    assert_eq!(files[1]["ok"], true);
    assert_eq!(files[1]["summary"]["state_size"], 3);
}

#[test]
fn unreadable_and_non_utf8_files_are_diagnostics() {
    let o = glassbox(&["check", "no/such/file.gbx"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("glassbox::io_error"), "{}", stderr(&o));

    let dir = scratch("non_utf8");
    let bad = dir.join("bad.gbx");
    std::fs::write(&bad, b"model m\nstate x = 1 \xff\xfe\n").unwrap();
    let o = glassbox(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("glassbox::not_utf8"), "{}", stderr(&o));
}

#[test]
fn missing_data_file_names_the_resolved_path() {
    let dir = scratch("missing_data");
    let model = dir.join("m.gbx");
    std::fs::write(
        &model,
        "model m\nstate y = 1\ndy/dt = -y\ndata obs = csv(\"nowhere/obs.csv\", time = \"t\", columns = [\"y\"])\n",
    )
    .unwrap();
    let o = glassbox(&["check", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let resolved = dir.join("nowhere/obs.csv");
    assert!(
        stderr(&o).contains(&resolved.display().to_string()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn every_example_is_canonically_formatted() {
    let files = examples();
    let mut args = vec!["fmt", "--check"];
    args.extend(files.iter().map(String::as_str));
    let o = glassbox(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn fmt_writes_canonical_source_and_refuses_broken_files() {
    let dir = scratch("fmt");
    let ok = dir.join("ok.gbx");
    std::fs::write(&ok, "model   m\nstate y=1 # keep me\ndy/dt=-y^2+ 2*(y-1)\n").unwrap();
    let o = glassbox(&["fmt", "--check", ok.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let o = glassbox(&["fmt", "--write", ok.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&ok).unwrap(),
        "model m\nstate y = 1  # keep me\ndy/dt = -y^2 + 2 * (y - 1)\n"
    );
    let o = glassbox(&["fmt", "--check", ok.to_str().unwrap()]);
    assert!(o.status.success());

    let broken = dir.join("broken.gbx");
    let text = "model m\nstate y = (1\ndy/dt = -y\n";
    std::fs::write(&broken, text).unwrap();
    let o = glassbox(&["fmt", "--write", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("glassbox::"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        text,
        "left untouched"
    );
}

#[test]
fn show_prints_the_vector_field_and_a_simplified_vjp() {
    let o = glassbox(&["show", "examples/spiral.gbx"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("dy/dt = f.W2·tanh(f.W1·y^3 + f.b1) + f.b2"),
        "{}",
        stdout(&o)
    );

    let o = glassbox(&["show", "examples/lotka_volterra_ude.gbx", "--vjp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for name in [
        "vjp_x =",
        "vjp_y =",
        "vjp_alpha =",
        "vjp_u.W1 =",
        "vjp_u.b3 =",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    // tanh' is written with the forward value, shared with the forward pass (CSE).
    assert!(out.contains("(1 - h2^2)"), "{out}");
}

#[test]
fn show_ir_and_clif_print_nodes_and_the_compiled_kernel() {
    let o = glassbox(&["show", "examples/spiral.gbx", "--ir"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "arg 2 p[",
        "= matvec %",
        ": [50]",
        "= tanh %",
        "output dy/dt = %",
    ] {
        assert!(out.contains(line), "{line} missing:\n{out}");
    }

    for extra in [&[][..], &["--vjp"], &["--jacobian"], &["--dt", "2"]] {
        let mut args = vec!["show", "examples/digits.gbx", "--clif"];
        args.extend_from_slice(extra);
        let o = glassbox(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("function u0:0(i64, i64, i64)"), "{out}");
        assert!(out.contains("; compiled in "), "{out}");
        assert!(out.trim_end().ends_with('}'), "{out}");
    }

    let o = glassbox(&["show", "examples/spiral.gbx", "--clif", "--latex"]);
    assert!(!o.status.success(), "one output form at a time");
}

#[test]
fn show_jvp_jacobian_and_time_derivatives() {
    for flag in [
        &["--jvp"][..],
        &["--jacobian"],
        &["--dt", "2"],
        &["--dt", "3"],
    ] {
        let mut args = vec!["show", "examples/lorenz.gbx"];
        args.extend_from_slice(flag);
        let o = glassbox(&args);
        assert!(o.status.success(), "{flag:?}: {}", stderr(&o));
        assert!(!stdout(&o).trim().is_empty());
    }
    let o = glassbox(&["show", "examples/lorenz.gbx", "--jacobian"]);
    let out = stdout(&o);
    assert!(out.contains("jacobian ="), "{out}");
    let o = glassbox(&["show", "examples/lorenz.gbx", "--dt", "0"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects K = 0");
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i64;
    let mut prev = ' ';
    for c in s.chars() {
        if prev != '\\' {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
        }
        if depth < 0 {
            return false;
        }
        prev = c;
    }
    depth == 0 && s.matches("\\left").count() == s.matches("\\right").count()
}

#[test]
fn show_latex_is_balanced_for_every_example_and_view() {
    for f in examples() {
        for flag in [
            &[][..],
            &["--vjp"],
            &["--jvp"],
            &["--jacobian"],
            &["--dt", "2"],
        ] {
            let mut args = vec!["show", f.as_str(), "--latex"];
            args.extend_from_slice(flag);
            let o = glassbox(&args);
            assert!(o.status.success(), "{f} {flag:?}: {}", stderr(&o));
            let out = stdout(&o);
            assert!(balanced(&out), "{f} {flag:?}: unbalanced LaTeX:\n{out}");
            assert!(out.contains("&="), "{f} {flag:?}: not align*-ready:\n{out}");
        }
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["check", "show", "fmt"] {
        let o = glassbox(&[sub, "--help"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains("Usage: glassbox"), "{sub}");
    }
    let o = glassbox(&["--help"]);
    assert!(stdout(&o).contains("check") && stdout(&o).contains("show"));
}

#[test]
fn hostile_input_never_crashes_the_binary() {
    let dir = scratch("hostile");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.gbx", Vec::new()),
        (
            "nested.gbx",
            format!(
                "model m\nstate y = {}1{}\n",
                "(".repeat(100_000),
                ")".repeat(100_000)
            )
            .into_bytes(),
        ),
        (
            "long.gbx",
            format!("model m\nstate y = 1\ndy/dt = {}\n", "y+".repeat(1_000_000)).into_bytes(),
        ),
        (
            "garbage.gbx",
            (0..20_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        (
            "huge_number.gbx",
            b"model m\nstate y = 1e999\ndy/dt = -y\n".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = glassbox(&["check", path.to_str().unwrap()]);
        let code = o.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{name}: exit {code:?}\n{}",
            stderr(&o)
        );
    }
}

/// Exit 0 or 1, and no panic message (the binary catches panics and says "internal error").
fn assert_no_crash(o: &Output, what: &str) {
    let err = stderr(o);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{what}: exit {:?}\n{err}",
        o.status.code()
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{what}:\n{err}"
    );
}

#[test]
fn show_prints_every_view_of_a_model_without_states() {
    let dir = scratch("stateless");
    let views: [&[&str]; 10] = [
        &[],
        &["--jacobian"],
        &["--jacobian", "--latex"],
        &["--jacobian", "--ir"],
        &["--jacobian", "--clif"],
        &["--vjp"],
        &["--jvp"],
        &["--dt", "2"],
        &["--ir"],
        &["--latex"],
    ];
    for (name, text) in [("empty.gbx", ""), ("bare.gbx", "model m\n")] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        for view in views {
            let mut args = vec!["show"];
            args.extend_from_slice(view);
            args.push(path.to_str().unwrap());
            let o = glassbox(&args);
            assert!(o.status.success(), "{name} {view:?}:\n{}", stderr(&o));
            assert_no_crash(&o, &format!("{name} {view:?}"));
        }
    }
    let o = glassbox(&["show", "--jacobian", dir.join("bare.gbx").to_str().unwrap()]);
    assert!(stdout(&o).contains("jacobian = []"), "{}", stdout(&o));
}

#[test]
fn a_diagnostic_far_into_a_long_line_is_drawn_in_a_window_of_it() {
    let dir = scratch("long_line");
    // miette pads to a label's column with a format width, which panics past 65 535.
    let far = dir.join("far.gbx");
    std::fs::write(&far, format!("state x = 1{}$\n", " ".repeat(65_525))).unwrap();
    // Two labels on one long line, far apart: the second declaration's and the first's.
    let two = dir.join("two.gbx");
    let filler = " ".repeat(70_000);
    std::fs::write(
        &two,
        format!("model m\nparam a = 1,{filler}a = 2\nstate x = 1\ndx/dt = -a * x\n"),
    )
    .unwrap();
    // `fmt` only parses, so it reports the parse error only.
    let cases: [(&PathBuf, &str, usize, &[&str]); 2] = [
        (
            &far,
            "glassbox::parse_error",
            65_537,
            &["check", "show", "fmt"],
        ),
        (
            &two,
            "glassbox::duplicate_declaration",
            70_013,
            &["check", "show"],
        ),
    ];
    for (path, code, column, commands) in cases {
        let path = path.to_str().unwrap();
        for &cmd in commands {
            let o = glassbox(&[cmd, path]);
            assert_eq!(o.status.code(), Some(1), "{cmd} {path}\n{}", stderr(&o));
            assert_no_crash(&o, &format!("{cmd} {path}"));
            let err = stderr(&o);
            assert!(err.contains(code), "{cmd} {path}\n{err}");
            // The header names the true column; only a window of the line is drawn.
            assert!(err.contains(&format!(":{column}]")), "{cmd} {path}\n{err}");
            assert!(err.lines().all(|l| l.len() < 400), "{cmd} {path}\n{err}");
        }
        // JSON carries the true span.
        let o = glassbox(&["check", "--format", "json", path]);
        let out = stdout(&o);
        assert!(out.contains(&format!("\"column\": {column}")), "{out}");
    }
}

#[test]
fn past_the_dense_jacobian_limit_implicit_solves_and_show_jacobian_are_refused() {
    let dir = scratch("jacobian_limit");
    // 2049 states: 2049² entries, just past the limit of 2048².
    let model = |method: &str| {
        format!("model m\nstate y[2049] = 1\ndy/dt = -y\nsolve {method}() over [0, 1]\n")
    };
    for method in ["rosenbrock23", "rodas5p"] {
        let path = dir.join(format!("{method}.gbx"));
        std::fs::write(&path, model(method)).unwrap();
        for cmd in ["solve", "build"] {
            let o = glassbox(&[cmd, path.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(1), "{cmd} {method}\n{}", stderr(&o));
            assert_no_crash(&o, method);
            let err = stderr(&o);
            assert!(err.contains("glassbox::jacobian_too_large"), "{err}");
            assert!(err.contains("4 194 304") && err.contains("tsit5"), "{err}");
        }
    }
    // `auto` stays explicit instead of switching.
    let path = dir.join("auto.gbx");
    std::fs::write(&path, model("auto")).unwrap();
    let o = glassbox(&["solve", "--stats", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats = stderr(&o);
    assert!(
        stats.contains("switches          0") && stats.contains("jacobians         0"),
        "{stats}"
    );
    // `show --jacobian` refuses before building the symbolic matrix (60 000² entries).
    let wide = dir.join("wide.gbx");
    std::fs::write(&wide, "model m\nstate W[2, 30000] = 1\ndW/dt = -W\n").unwrap();
    let o = glassbox(&["show", "--jacobian", wide.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_no_crash(&o, "show --jacobian");
    assert!(
        stderr(&o).contains("glassbox::jacobian_too_large"),
        "{}",
        stderr(&o)
    );
}

/// An empty file (or a bare `model m`) is valid, so `check` accepts it, but it warns that
/// there is nothing to solve rather than saying only "ok".
#[test]
fn check_warns_about_a_model_without_states() {
    let dir = scratch("nostates");
    for (name, text) in [("empty.gbx", ""), ("bare.gbx", "model m\n")] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = glassbox(&["check", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("ok"), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("glassbox::no_states") && err.contains("nothing to solve"),
            "{err}"
        );
    }
}
