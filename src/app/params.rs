//! Learned parameters made readable: scalars and small tensors (at most [`SMALL`] elements)
//! by name with their values, larger ones by name, shape and norm — the training report,
//! `run.json` and `glassbox params` all print this one summary.

use serde::{Deserialize, Serialize};

use crate::sema::Model;

/// Tensors up to this many elements are listed value by value.
pub const SMALL: usize = 8;

/// One parameter as a person reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSummary {
    pub name: String,
    /// `[]` for a scalar, `[n]`, `[rows, cols]`.
    pub shape: Vec<usize>,
    /// Trained or fixed; `None` when the weights do not say (files older than the flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<bool>,
    /// Every value, row-major, for small parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
    /// The Euclidean norm, for larger ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<f64>,
}

/// A parameter's place in the model: `run.json` lists them, so `glassbox params` can give
/// the weights file's tensors the model's order and say which are learned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamDecl {
    pub name: String,
    pub shape: Vec<usize>,
    pub learned: bool,
}

/// Every parameter of `model`, in declaration order.
pub fn decls(model: &Model) -> Vec<ParamDecl> {
    model
        .params
        .iter()
        .map(|q| ParamDecl {
            name: q.name.clone(),
            shape: crate::train::io::dims(&q.shape),
            learned: q.learn,
        })
        .collect()
}

/// Tensors read from a weights file (by name), as summaries in the order of `decls` with
/// their learned flags; without `decls` (a bare weights file) by name, flags unknown.
pub fn of_tensors(
    tensors: &[crate::train::io::NamedTensor],
    decls: Option<&[ParamDecl]>,
) -> Vec<ParamSummary> {
    let decl = |name: &str| decls.and_then(|d| d.iter().position(|q| q.name == name));
    let mut out: Vec<(Option<usize>, ParamSummary)> = tensors
        .iter()
        .map(|t| {
            let at = decl(&t.name);
            let learned = at.and_then(|i| decls.map(|d| d[i].learned));
            (at, summarize(&t.name, &t.shape, learned, &t.values))
        })
        .collect();
    out.sort_by_key(|(at, _)| at.unwrap_or(usize::MAX));
    out.into_iter().map(|(_, s)| s).collect()
}

/// The summary of one tensor.
pub fn summarize(
    name: &str,
    shape: &[usize],
    learned: Option<bool>,
    values: &[f64],
) -> ParamSummary {
    let small = values.len() <= SMALL;
    ParamSummary {
        name: name.to_string(),
        shape: shape.to_vec(),
        learned,
        values: small.then(|| values.to_vec()),
        norm: (!small).then(|| values.iter().map(|v| v * v).sum::<f64>().sqrt()),
    }
}

/// The learned parameters of `model` at `p`, in declaration order.
pub fn learned(model: &Model, p: &[f64]) -> Vec<ParamSummary> {
    model
        .params
        .iter()
        .filter(|q| q.learn)
        .map(|q| {
            let vals = p.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[]);
            summarize(&q.name, &crate::train::io::dims(&q.shape), Some(true), vals)
        })
        .collect()
}

/// A number in at most six significant digits, scientific outside [1e-3, 1e5).
pub fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if !(1e-3..1e5).contains(&v.abs()) {
        return format!("{v:.5e}");
    }
    let decimals = (5.0 - v.abs().log10().floor()).max(0.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `[16, 2]`, or `scalar`.
fn shape_text(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// What a summary says after its name: `= 9.98`, `= [1, 2]`, `[16, 2], norm 3.1`.
pub fn value_text(s: &ParamSummary) -> String {
    match (&s.values, s.norm) {
        (Some(v), _) if s.shape.is_empty() => {
            format!("= {}", v.first().map_or(String::new(), |x| number(*x)))
        }
        (Some(v), _) => {
            let items: Vec<String> = v.iter().map(|x| number(*x)).collect();
            format!("{} = [{}]", shape_text(&s.shape), items.join(", "))
        }
        (None, Some(n)) => format!("{}, norm {}", shape_text(&s.shape), number(n)),
        (None, None) => shape_text(&s.shape),
    }
}

/// One line per parameter, names aligned; `fixed` after a parameter that is not learned.
pub fn text(params: &[ParamSummary]) -> String {
    let width = params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    params
        .iter()
        .map(|p| {
            let fixed = if p.learned == Some(false) {
                "  (fixed)"
            } else {
                ""
            };
            format!("{:width$}  {}{fixed}\n", p.name, value_text(p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_parameters_show_values_and_large_ones_their_norm() {
        let mu = summarize("mu", &[], Some(true), &[9.987654321]);
        assert_eq!(value_text(&mu), "= 9.98765");
        let b = summarize("b", &[2], Some(false), &[0.5, -2e-7]);
        assert_eq!(value_text(&b), "[2] = [0.5, -2.00000e-7]");
        let w = summarize("f.W1", &[3, 4], Some(true), &[1.0; 12]);
        assert_eq!((w.values.as_ref(), w.norm), (None, Some(12f64.sqrt())));
        assert_eq!(value_text(&w), "[3, 4], norm 3.4641");
        assert_eq!(
            text(&[mu, b]),
            "mu  = 9.98765\nb   [2] = [0.5, -2.00000e-7]  (fixed)\n"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(10.0), "10");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(123456.0), "1.23456e5");
        assert_eq!(number(0.0), "0");
    }
}
