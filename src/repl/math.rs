//! What the REPL computes from a checked model: an expression's value and shape, derivatives
//! (`:diff`, `:jacobian`) and the simplified equations (`:show`).
//!
//! Everything goes through the compiler's own stages — checker, `ir::lower_expr`,
//! `ir::simplify`, `ir::eval` — at the model's current parameters (trained, after `:train`),
//! its initial state and `t = 0` (inputs, if the model declares any, are zero). Nothing here
//! reads the AST.

use std::fmt::Write as _;

use crate::diag::Diag;
use crate::ir::lower::{Part, internal, lower, lower_expr, model_function};
use crate::ir::{Function, Shape as IrShape, eval, jacobian, print_text, simplify};
use crate::sema::{Model, Shape};

/// The point every value is shown at: `(t, u, p, x)`.
pub struct Point {
    pub t: f64,
    pub u: Vec<f64>,
    pub p: Vec<f64>,
    pub x: Vec<f64>,
}

/// `p`: the parameters to show values at (the session's trained ones, else the declared).
pub fn point(model: &Model, p: Vec<f64>) -> Result<Point, Diag> {
    let x = vec![0.0; model.inputs.iter().map(|i| i.shape.size()).sum()];
    let u = crate::solve::initial_state(model, &p, &x, 0.0)?;
    Ok(Point { t: 0.0, u, p, x })
}

/// Output `output` of the model (an expression the session appended) as a simplified function
/// with one output called `name`.
pub fn output_function(model: &Model, output: usize, name: &str) -> Result<Function, Diag> {
    let out = model
        .outputs
        .get(output)
        .ok_or_else(|| internal(crate::ir::IrError::Invalid("no such output".into())))?;
    let mut f = model_function(model);
    let node = lower_expr(model, &mut f, &out.value)?;
    f.push_output(name, node);
    let f = simplify(&f);
    f.validate().map_err(internal)?;
    Ok(f)
}

pub fn evaluate(f: &Function, at: &Point) -> Result<Vec<f64>, Diag> {
    let t = [at.t];
    let mut args: Vec<&[f64]> = vec![&t, &at.u, &at.p];
    if f.arg_index("x").is_some() {
        args.push(&at.x);
    }
    eval(f, &args, 1).map_err(internal)
}

/// `d(expr)/dX` for a state, parameter or input `X` (or `t`): columns of the Jacobian of `f`
/// with respect to `X`'s argument, shaped like `X` for a scalar expression, else a matrix
/// (expression elements × elements of `X`) or a vector when either side has one element.
pub fn derivative(f: &Function, wrt: &str) -> Result<Function, Diag> {
    let Some(slot) = f.slots.iter().find(|s| s.name == wrt).cloned() else {
        let names: Vec<&str> = f.slots.iter().map(|s| s.name.as_str()).collect();
        let mut d = Diag::error(
            "glassbox::repl_bad_wrt",
            format!(
                "cannot differentiate with respect to `{wrt}`: it is not a state, parameter or input"
            ),
        );
        d = d.help(
            match crate::diag::did_you_mean(wrt, names.iter().copied()) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("differentiate with respect to one of: {}", names.join(", ")),
            },
        );
        return Err(d);
    };
    let arg = f
        .args
        .get(slot.arg)
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let n = f.args.get(slot.arg).map_or(0, |a| a.len);
    let m = f.output_len();
    let mut j = jacobian(f, &arg).map_err(internal)?;
    let Some(out) = j.outputs.first().map(|o| o.node) else {
        return Err(internal(crate::ir::IrError::Invalid(
            "empty jacobian".into(),
        )));
    };
    let k = slot.shape.len();
    let flat = j.graph.flatten(out);
    let rows: Vec<_> = (0..m)
        .map(|i| {
            if k == 1 {
                j.graph.index(flat, i * n + slot.offset)
            } else {
                j.graph.slice(flat, i * n + slot.offset, k)
            }
        })
        .collect();
    let node = match (m, k) {
        (1, _) => {
            let only = rows[0];
            if k == 1 {
                only
            } else {
                j.graph.reshape(only, slot.shape)
            }
        }
        (_, 1) => j.graph.concat(&rows),
        _ => {
            let cat = j.graph.concat(&rows);
            j.graph.reshape(cat, IrShape::Matrix(m, k))
        }
    };
    let name = match f.outputs.first() {
        Some(o) => format!("d({})/d{wrt}", o.name),
        None => format!("d/d{wrt}"),
    };
    j.outputs = vec![crate::ir::Output { name, node }];
    let j = simplify(&j);
    j.validate().map_err(internal)?;
    Ok(j)
}

/// The simplified vector field (ODE right-hand side or SDE drift), and for SDEs the diffusion.
pub fn field_text(model: &Model, only: Option<&str>) -> Result<String, Diag> {
    let mut parts = vec![lower(model, Part::Field)?];
    if model.kind == crate::sema::ModelKind::Sde {
        parts.push(lower(model, Part::Diffusion)?);
    }
    let mut out = String::new();
    for mut f in parts {
        if let Some(state) = only {
            f.outputs.retain(|o| {
                o.name == format!("d{state}/dt")
                    || o.name == format!("drift {state}")
                    || o.name == format!("diffusion {state}")
            });
            f = simplify(&f);
        }
        out.push_str(&print_text(&f));
    }
    Ok(out)
}

/// The Jacobian ∂f/∂u, symbolic, and its value at `at`.
pub fn field_jacobian(model: &Model) -> Result<Function, Diag> {
    let field = lower(model, Part::Field)?;
    jacobian(&field, "u").map_err(internal)
}

/// A value in the language's own notation: `2.5`, `[1, 2]`, `[1, 2; 3, 4]`.
pub fn format_value(values: &[f64], shape: IrShape) -> String {
    let num = |x: &f64| format_number(*x);
    match shape {
        IrShape::Scalar => values.first().map_or_else(String::new, num),
        IrShape::Vector(_) => {
            let items: Vec<String> = values.iter().map(num).collect();
            format!("[{}]", items.join(", "))
        }
        IrShape::Matrix(_, cols) => {
            let rows: Vec<String> = values
                .chunks(cols.max(1))
                .map(|r| r.iter().map(num).collect::<Vec<_>>().join(", "))
                .collect();
            format!("[{}]", rows.join("; "))
        }
    }
}

/// Shortest text that reads back as the same f64 (Rust's `{}`), with `e` notation for very
/// large or small magnitudes so rows stay readable.
pub fn format_number(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && a.is_finite() && !(1e-4..1e9).contains(&a) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

pub fn shape_text(s: Shape) -> String {
    s.to_string()
}

/// `value : shape` lines for `f`'s only output at `at`.
pub fn value_line(f: &Function, at: &Point, shape: Shape) -> Result<String, Diag> {
    let values = evaluate(f, at)?;
    let ir = f
        .outputs
        .first()
        .map_or(IrShape::Scalar, |o| f.graph.shape(o.node));
    let mut s = String::new();
    let _ = write!(s, "{} : {}", format_value(&values, ir), shape_text(shape));
    Ok(s)
}
