//! The last link of the chain: from `dL/du0` to the parameters that computed the initial state
//! (`state h[32] = enc(x)`), by the interpreter on `ir::vjp(lower_init(model), ["p"], "v")`.
//! The initial state is computed once per solve, so the oracle interpreter is fast enough.

use crate::diag::Diag;
use crate::ir::{self, lower};
use crate::sema::Model;

/// `(∂u0/∂p)ᵀ du0` for the model's initial state `u0(t0, p, x)`.
pub fn initial_state_vjp(
    model: &Model,
    p: &[f64],
    x: &[f64],
    t0: f64,
    du0: &[f64],
) -> Result<Vec<f64>, Diag> {
    let init = lower::lower_init(model)?;
    let v = ir::vjp(&init, &["p"], "v").map_err(lower::internal)?;
    let t = [t0];
    let u = vec![0.0; model.state_size];
    let mut refs: Vec<&[f64]> = Vec::with_capacity(v.args.len());
    for spec in &v.args {
        let buf: &[f64] = match spec.name.as_str() {
            "t" => &t,
            "u" => &u,
            "p" => p,
            "x" => x,
            _ => du0,
        };
        if buf.len() != spec.len {
            return Err(Diag::error(
                "glassbox::input_size",
                format!(
                    "the initial state needs {} values for `{}`, got {}",
                    spec.len,
                    spec.name,
                    buf.len()
                ),
            )
            .help("give one value per declared element (parameters come from the model)"));
        }
        refs.push(buf);
    }
    ir::eval(&v, &refs, 1).map_err(lower::internal)
}
