//! CSV: numbers in `{:e}` form so they round-trip exactly (logits in `{}` form, as
//! `glassbox predict` has always written them).

use std::fmt::Write as _;

use crate::app::solve::element_names;
use crate::grad::FinalMean;
use crate::sema::Model;
use crate::solve::Solution;
use crate::solve::sde::SdeSolution;
use crate::train;

/// What to write as CSV.
pub enum Csv<'a> {
    /// `t,<states>`: one solve (also a prediction, or an SDE's mean path).
    Trajectory {
        names: &'a [String],
        sol: &'a Solution,
    },
    /// `sample,t,<states>`: one solve per input sample (a binary of a model with inputs).
    Samples {
        names: &'a [String],
        sols: &'a [Solution],
    },
    /// `path,t,<states>`, paths in order, each at every saved time. The path column is always
    /// there for SDE models, so the file's shape does not depend on `--paths`.
    Paths {
        names: &'a [String],
        sol: &'a SdeSolution,
    },
    /// `param,gradient`, one row per parameter element.
    Gradient { model: &'a Model, g: &'a FinalMean },
    /// `class[,label],logit_0,...`, one row per sample of `[rows, k]` logits.
    Logits {
        logits: &'a [f64],
        k: usize,
        labels: Option<&'a [usize]>,
    },
}

pub fn to_csv(what: &Csv) -> String {
    match *what {
        Csv::Trajectory { names, sol } => {
            let mut out = header("t", names);
            rows(&mut out, "", sol);
            out
        }
        Csv::Samples { names, sols } => {
            let mut out = header("sample,t", names);
            for (i, sol) in sols.iter().enumerate() {
                rows(&mut out, &format!("{i},"), sol);
            }
            out
        }
        Csv::Paths { names, sol } => {
            let mut out = header("path,t", names);
            for (k, path) in sol.paths.iter().enumerate() {
                rows(&mut out, &format!("{k},"), path);
            }
            out
        }
        Csv::Gradient { model, g } => {
            let mut out = String::from("param,gradient\n");
            for q in &model.params {
                let values = g.dp.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[]);
                for (name, v) in element_names(&q.name, &q.shape).iter().zip(values) {
                    let _ = writeln!(out, "{name},{v:e}");
                }
            }
            out
        }
        Csv::Logits { logits, k, labels } => logits_csv(logits, k, labels),
    }
}

/// `lead,<names>` and a newline.
fn header(lead: &str, names: &[String]) -> String {
    let mut out = String::from(lead);
    for n in names {
        out.push(',');
        out.push_str(n);
    }
    out.push('\n');
    out
}

/// One row `<prefix>t,u...` per saved time (`prefix` ends in a comma or is empty).
fn rows(out: &mut String, prefix: &str, sol: &Solution) {
    for (i, &t) in sol.ts.iter().enumerate() {
        let _ = write!(out, "{prefix}{t:e}");
        for x in sol.u(i).unwrap_or(&[]) {
            let _ = write!(out, ",{x:e}");
        }
        out.push('\n');
    }
}

fn logits_csv(logits: &[f64], k: usize, labels: Option<&[usize]>) -> String {
    let mut text = String::from("class");
    if labels.is_some() {
        text += ",label";
    }
    for i in 0..k {
        text += &format!(",logit_{i}");
    }
    text.push('\n');
    for (i, z) in logits.chunks(k.max(1)).enumerate() {
        text += &train::argmax(z).to_string();
        if let Some(l) = labels.and_then(|l| l.get(i)) {
            text += &format!(",{l}");
        }
        for v in z {
            text += &format!(",{v}");
        }
        text.push('\n');
    }
    text
}
