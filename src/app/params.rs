//! Learned parameters made readable: scalars and small tensors (at most [`SMALL`] elements)
//! by name with their values, larger ones by name, shape and norm — the training report,
//! `run.json` and `glassbox params` all print this one summary.

use serde::{Deserialize, Serialize};

use crate::diag::{Diag, did_you_mean};
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

/// Every parameter of `model` with its values in `p`, in declaration order.
pub fn values<'p>(model: &Model, p: &'p [f64]) -> Vec<(ParamDecl, &'p [f64])> {
    decls(model)
        .into_iter()
        .zip(&model.params)
        .map(|(d, q)| (d, p.get(q.offset..q.offset + q.shape.size()).unwrap_or(&[])))
        .collect()
}

/// Overrides the parameter `name` in `p` with `values`, given in `shape` (`[]` for a scalar;
/// a one-element vector `[1]` also fits a scalar): the Python package's `solve(params=...)`. An
/// unknown name, another shape or a non-finite value is a `glassbox::bad_argument`.
pub fn set(
    model: &Model,
    p: &mut [f64],
    name: &str,
    shape: &[usize],
    values: &[f64],
) -> Result<(), Diag> {
    let Some(q) = model.params.iter().find(|q| q.name == name) else {
        let names = model.params.iter().map(|q| q.name.as_str());
        let help = match did_you_mean(name, names.clone()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!(
                "`{}` has: {}",
                model.name,
                names.collect::<Vec<_>>().join(" ")
            ),
        };
        return Err(Diag::error(
            "glassbox::bad_argument",
            format!("`{}` has no parameter `{name}`", model.name),
        )
        .help(help));
    };
    let want = crate::train::io::dims(&q.shape);
    let fits = shape == want.as_slice() || (want.is_empty() && shape == [1]);
    if !fits || values.len() != q.shape.size() {
        return Err(Diag::error(
            "glassbox::bad_argument",
            format!(
                "`{name}` is {} but the value given is {}",
                shape_text(&want),
                shape_text(shape)
            ),
        )
        .help(format!(
            "give `{name}` a value of shape {}",
            shape_text(&want)
        )));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Diag::error(
            "glassbox::bad_argument",
            format!("`{name}` is given {v}, which is not a finite number"),
        )
        .help("give finite parameter values"));
    }
    if let Some(dst) = p.get_mut(q.offset..q.offset + values.len()) {
        dst.copy_from_slice(values);
    }
    Ok(())
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

    fn decay() -> Model {
        let file = crate::source::SourceFile::new(
            "decay.gbx",
            "model decay\nstate y = 1\nparam k = 0.5, w = [1, 2]\ndy/dt = -k * y\n",
        );
        let checked = crate::check_source(&file, &crate::source::MemoryLoader::default());
        checked.model.expect("decay checks")
    }

    #[test]
    fn set_overrides_by_name_and_refuses_wrong_names_shapes_and_values() {
        let model = decay();
        let mut p = crate::solve::param_values(&model);
        set(&model, &mut p, "k", &[], &[2.0]).unwrap();
        set(&model, &mut p, "w", &[2], &[3.0, 4.0]).unwrap();
        let got: Vec<(String, Vec<f64>)> = values(&model, &p)
            .into_iter()
            .map(|(d, v)| (d.name, v.to_vec()))
            .collect();
        assert_eq!(got, [("k".into(), vec![2.0]), ("w".into(), vec![3.0, 4.0])]);
        let err = set(&model, &mut p, "kk", &[], &[1.0]).unwrap_err();
        assert_eq!(err.code, "glassbox::bad_argument");
        assert_eq!(err.help.as_deref(), Some("did you mean `k`?"));
        let err = set(&model, &mut p, "w", &[3], &[1.0, 2.0, 3.0]).unwrap_err();
        assert!(
            err.message.contains("[2]") && err.message.contains("[3]"),
            "{}",
            err.message
        );
        set(&model, &mut p, "k", &[1], &[2.0]).unwrap();
        assert!(set(&model, &mut p, "k", &[1, 1], &[2.0]).is_err());
        let err = set(&model, &mut p, "k", &[], &[f64::NAN]).unwrap_err();
        assert!(err.message.contains("NaN"), "{}", err.message);
        // Nothing refused changed `p`.
        assert_eq!(values(&model, &p)[0].1, [2.0]);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(10.0), "10");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(123456.0), "1.23456e5");
        assert_eq!(number(0.0), "0");
    }
}
