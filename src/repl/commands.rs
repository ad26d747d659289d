//! The REPL's commands and the dispatch of one input: command, items, or expression.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::input::is_item;
use super::math;
use super::session::{Change, Session};
use super::solve;
use super::training::{self, Trained};
use crate::app::solve::state_names;
use crate::diag::{Diag, did_you_mean};
use crate::ir::print_text;
use crate::kit::load_source;
use crate::sema::Model;
use crate::source::SourceFile;

type Outcome = Result<String, Vec<Diag>>;

#[derive(Default)]
pub struct Repl {
    pub session: Session,
    /// The last `:solve`'s statistics, for `:stats`.
    pub last_stats: Option<String>,
    /// The session's training run (`:train`), while the program is unchanged.
    pub trained: Option<Trained>,
    pub quit: bool,
}

/// The text before the command list of `:help`.
const HELP_INTRO: &str = "\
Enter declarations and equations one at a time (`state x = 1`, `dx/dt = -k * x`); entering a
name again replaces its declaration and rechecks the model. An expression prints its value and
shape at the initial state, the current parameters and t = 0.
";

/// One REPL command. A new command is one row of [`COMMANDS`]: `:help`, completion, "did you
/// mean" and the dispatch all read the table.
pub struct Command {
    /// Its names without the colon; the first is the one `:help` and completion show,
    /// one-letter names are shorthands and are not completed.
    pub names: &'static [&'static str],
    /// The left column of `:help`.
    pub usage: &'static str,
    /// The right column of `:help` (continuation lines are indented to the column).
    pub about: &'static str,
    pub run: fn(&mut Repl, &str) -> Outcome,
}

/// Every command, in `:help` order.
pub const COMMANDS: &[Command] = &[
    Command {
        names: &["load", "l"],
        usage: ":load FILE",
        about: "start over from a model file",
        run: |r, rest| {
            if rest.is_empty() {
                return Err(usage(":load FILE", "give the path of a model file"));
            }
            r.load(Path::new(rest))
        },
    },
    Command {
        names: &["reload", "r"],
        usage: ":reload",
        about: "read that file again",
        run: |r, _| {
            let Some(path) = r.session.path.clone() else {
                return Err(vec![
                    Diag::error(
                        "glassbox::repl_nothing_loaded",
                        "there is no file to reload",
                    )
                    .help("load one first with `:load FILE`"),
                ]);
            };
            r.load(&path)
        },
    },
    Command {
        names: &["list"],
        usage: ":list",
        about: "the session's program",
        run: |r, _| Ok(r.session.text()),
    },
    Command {
        names: &["show"],
        usage: ":show [NAME]",
        about: "the simplified vector field, or one state's equation / one declaration",
        run: |r, rest| r.show(rest),
    },
    Command {
        names: &["diff"],
        usage: ":diff EXPR wrt X",
        about: "d(EXPR)/dX, simplified, and its value (X: a state, parameter or t)",
        run: |r, rest| r.diff(rest),
    },
    Command {
        names: &["jacobian"],
        usage: ":jacobian",
        about: "the Jacobian of the vector field, simplified, and its value",
        run: |r, _| r.jacobian(),
    },
    Command {
        names: &["type"],
        usage: ":type EXPR",
        about: "the shape of EXPR",
        run: |r, rest| {
            if rest.is_empty() {
                return Err(usage(
                    ":type EXPR",
                    "give an expression, e.g. `:type [x, y]`",
                ));
            }
            let file = SourceFile::new("<input>", rest.to_string());
            let (model, index) = r.session.with_expr(&file)?;
            let shape = model.outputs.get(index).map(|o| o.value.shape);
            Ok(shape.map(math::shape_text).unwrap_or_default())
        },
    },
    Command {
        names: &["solve"],
        usage: ":solve [OPTIONS]",
        about: "solve and plot (--over T0:T1, --at T0:T1:N, --method M, --rtol R,
                      --atol A, --dt DT, --plot FILE.png, -o FILE.csv)",
        run: Repl::solve,
    },
    Command {
        names: &["stats"],
        usage: ":stats",
        about: "the last solve's statistics and heuristics",
        run: |r, _| match &r.last_stats {
            Some(s) => Ok(s.clone()),
            None => Err(vec![
                Diag::error("glassbox::repl_no_solve", "nothing solved yet")
                    .help("run `:solve` first; `:stats` shows that solve's statistics"),
            ]),
        },
    },
    Command {
        names: &["clear"],
        usage: ":clear",
        about: "forget every declaration",
        run: |r, _| {
            r.session = Session::default();
            r.last_stats = None;
            r.trained = None;
            Ok("session cleared".into())
        },
    },
    Command {
        names: &["train"],
        usage: ":train N",
        about: "train the model for N more iterations (its `train` clause, data and
                      objective); values, `:diff`, `:jacobian` and `:solve` then use the
                      trained parameters",
        run: |r, rest| training::train(&mut r.trained, &r.session, rest),
    },
    Command {
        names: &["save"],
        usage: ":save DIR",
        about: "write weights.safetensors, checkpoint.json and run.json into DIR (one
                      that holds no run yet, unless `:save DIR --overwrite`)",
        run: |r, rest| training::save(&r.trained, &r.session, rest),
    },
    Command {
        names: &["help", "h", "?"],
        usage: ":help",
        about: "this text",
        run: |_, _| Ok(help_text()),
    },
    Command {
        names: &["quit", "q", "exit"],
        usage: ":quit",
        about: "leave (also Ctrl-D)",
        run: |r, _| {
            r.quit = true;
            Ok(String::new())
        },
    },
];

/// `:help`: the introduction, then one line (or a few) a command.
fn help_text() -> String {
    let mut out = format!("{HELP_INTRO}\n");
    for c in COMMANDS {
        let _ = writeln!(out, "  {:<20}{}", c.usage, c.about);
    }
    out
}

/// The names completion offers (with their colon): every name longer than one letter.
pub fn completions() -> impl Iterator<Item = String> {
    COMMANDS
        .iter()
        .flat_map(|c| c.names.iter())
        .filter(|n| n.len() > 1)
        .map(|n| format!(":{n}"))
}

impl Repl {
    pub fn names(&self) -> Vec<String> {
        self.session.names()
    }

    /// One complete input.
    pub fn handle(&mut self, text: &str) -> Outcome {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            return Ok(String::new());
        }
        if let Some(cmd) = trimmed.strip_prefix(':') {
            let (name, rest) = match cmd.find(char::is_whitespace) {
                Some(i) => (&cmd[..i], cmd[i..].trim()),
                None => (cmd, ""),
            };
            return self.command(name, rest);
        }
        let file = SourceFile::new("<input>", text.trim_end().to_string());
        if is_item(text) {
            self.enter(&file)
        } else {
            self.value(&file)
        }
    }

    fn command(&mut self, name: &str, rest: &str) -> Outcome {
        if let Some(c) = COMMANDS.iter().find(|c| c.names.contains(&name)) {
            return (c.run)(self, rest);
        }
        let word = format!(":{name}");
        let help = match did_you_mean(
            &word,
            completions().collect::<Vec<_>>().iter().map(String::as_str),
        ) {
            Some(m) => format!("did you mean `{m}`? (`:help` lists the commands)"),
            None => "`:help` lists the commands".to_string(),
        };
        Err(vec![
            Diag::error(
                "glassbox::repl_unknown_command",
                format!("there is no command `{word}`"),
            )
            .help(help),
        ])
    }

    pub fn load(&mut self, path: &Path) -> Outcome {
        let file = load_source(path).map_err(|d| vec![d])?;
        let n = self
            .session
            .load(PathBuf::from(path), &file)
            .map_err(|d| d.into_iter().collect::<Vec<_>>())?;
        self.last_stats = None;
        self.trained = None;
        let mut out = format!("loaded {} ({n} items)", path.display());
        if let Ok((_, model)) = self.session.model() {
            let s = crate::sema::summary(&model);
            let states: Vec<String> = s.states.iter().map(|st| st.name.clone()).collect();
            let _ = write!(
                out,
                ": model {}, states {}, {} parameters",
                s.name,
                states.join(", "),
                model.param_size
            );
        }
        Ok(out)
    }

    fn enter(&mut self, file: &Arc<SourceFile>) -> Outcome {
        let changes = self.session.enter(file)?;
        let mut out = String::new();
        for c in changes {
            let line = match c {
                Change::Defined(names) => format!("defined {}", names.join(", ")),
                Change::Replaced(names) => format!("redefined {}", names.join(", ")),
            };
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    /// The parameters values are shown and solved at: trained when the session has trained
    /// this very program, else the declared ones.
    fn params(&self, model: &Model) -> Vec<f64> {
        (self.trained.as_ref())
            .and_then(|t| t.params_for(&self.session))
            .unwrap_or_else(|| crate::solve::param_values(model))
    }

    fn value(&self, file: &Arc<SourceFile>) -> Outcome {
        let (model, index) = self.session.with_expr(file)?;
        let f = math::output_function(&model, index, "value").map_err(|d| vec![d])?;
        let at = math::point(&model, self.params(&model)).map_err(|d| vec![d])?;
        let shape = model.outputs.get(index).map(|o| o.value.shape);
        let shape = shape.unwrap_or(crate::sema::Shape::Scalar);
        math::value_line(&f, &at, shape).map_err(|d| vec![d])
    }

    fn show(&self, name: &str) -> Outcome {
        let (_, model) = self.session.model()?;
        if name.is_empty() {
            return math::field_text(&model, None).map_err(|d| vec![d]);
        }
        if model.states.iter().any(|s| s.name == name) {
            return math::field_text(&model, Some(name)).map_err(|d| vec![d]);
        }
        if let Some(p) = model.params.iter().find(|p| p.name == name) {
            let ir = crate::ir::lower::ir_shape(p.shape);
            return Ok(format!(
                "{} = {} : {}{}\n",
                p.name,
                math::format_value(&p.init, ir),
                p.shape,
                if p.learn { " (learned)" } else { "" }
            ));
        }
        if let Some(e) = self
            .session
            .entries
            .iter()
            .find(|e| e.keys.iter().any(|k| k == name))
        {
            return Ok(format!("{}\n", e.text));
        }
        let names = self.session.names();
        let help = match did_you_mean(name, names.iter().map(String::as_str)) {
            Some(m) => format!("did you mean `{m}`?"),
            None => "`:list` shows every declaration".into(),
        };
        Err(vec![
            Diag::error(
                "glassbox::undefined_name",
                format!("the session declares no `{name}`"),
            )
            .help(help),
        ])
    }

    fn diff(&self, rest: &str) -> Outcome {
        let Some(i) = rest.rfind(" wrt ") else {
            return Err(usage(
                ":diff EXPR wrt X",
                "e.g. `:diff x^2 * y wrt x`; X is a state, a parameter or t",
            ));
        };
        let (expr, wrt) = (&rest[..i], rest[i + 5..].trim());
        let file = SourceFile::new("<input>", expr.to_string());
        let (model, index) = self.session.with_expr(&file)?;
        let f = math::output_function(&model, index, expr.trim()).map_err(|d| vec![d])?;
        let d = math::derivative(&f, wrt).map_err(|d| vec![d])?;
        let at = math::point(&model, self.params(&model)).map_err(|d| vec![d])?;
        let values = math::evaluate(&d, &at).map_err(|d| vec![d])?;
        let shape = d
            .outputs
            .first()
            .map_or(crate::ir::Shape::Scalar, |o| d.graph.shape(o.node));
        Ok(format!(
            "{}at the initial state: {}\n",
            print_text(&d),
            math::format_value(&values, shape)
        ))
    }

    fn jacobian(&self) -> Outcome {
        let (_, model) = self.session.model()?;
        let j = math::field_jacobian(&model).map_err(|d| vec![d])?;
        let at = math::point(&model, self.params(&model)).map_err(|d| vec![d])?;
        let values = math::evaluate(&j, &at).map_err(|d| vec![d])?;
        let names = state_names(&model);
        let n = names.len();
        Ok(format!(
            "# Jacobian ∂f/∂u, u = [{}], row-major\n{}at the initial state: {}\n",
            names.join(", "),
            print_text(&j),
            math::format_value(&values, crate::ir::Shape::Matrix(n, n))
        ))
    }

    fn solve(&mut self, rest: &str) -> Outcome {
        let flags = solve::flags(rest)?;
        let (_, model) = self.session.model()?;
        let solved = solve::solve(&flags, &model, &self.params(&model))?;
        self.last_stats = Some(solved.stats);
        Ok(solved.out)
    }
}

pub(super) fn usage(form: &str, help: &str) -> Vec<Diag> {
    vec![Diag::error("glassbox::repl_usage", format!("usage: {form}")).help(help.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is the one list: names are unique, `:help` shows every command's usage, and
    /// completion offers every command by its first name.
    #[test]
    fn the_command_table_feeds_help_completion_and_dispatch() {
        let mut names: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| c.names.iter().copied())
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name used twice");
        let help = help_text();
        let offered: Vec<String> = completions().collect();
        for c in COMMANDS {
            assert!(help.contains(c.usage), "{} missing from :help", c.usage);
            assert!(
                offered.contains(&format!(":{}", c.names[0])),
                "{}",
                c.names[0]
            );
        }
        // Dispatch reaches the table's row: `:stats` before any solve is its own error.
        let mut repl = Repl::default();
        let err = repl.handle(":stats").expect_err("nothing solved");
        assert_eq!(err[0].code, "glassbox::repl_no_solve");
        let err = repl.handle(":stast").expect_err("unknown");
        assert!(err[0].help.as_deref().unwrap_or("").contains("`:stats`"));
    }
}
