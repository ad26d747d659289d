//! The SDE of a checked model, compiled with the JIT: what `glassbox solve` integrates for SDE
//! models, as [`crate::solve::JitField`] is for ODE models.
//!
//! [`JitSde`] lowers the drift (`Part::Field`) and the diffusion (`Part::Diffusion`) and
//! compiles both; the diffusion's JVP (`ir::jvp(diffusion, "u", "v")`, the very function
//! [`super::IrSde`] interprets) is compiled on first use, since only Milstein needs it. The
//! kernels run exactly what the interpreter runs, so `JitSde` equals `IrSde` bit for bit.
//!
//! Invariant: every kernel's argument buffers are checked once, when it is built, so the
//! `SdeField` calls cannot fail afterwards; should a call still fail (or the JVP fail to
//! compile) it writes NaN, which the solver reports as `non_finite_state`.

use std::time::Duration;

use super::field::{NoiseMap, SdeField};
use crate::diag::Diag;
use crate::ir::{self, Function, lower};
use crate::jit::{self, Kernel};
use crate::sema::Model;

const MAX_ARGS: usize = 6;

/// A compiled function of `t`, `u` (and `v` for the JVP) with `p` and `x` fixed.
struct Compiled {
    kernel: Kernel,
    /// Argument buffers by position; the per-call ones (`t`, `u`, `v`) are empty placeholders.
    fixed: Vec<Vec<f64>>,
    /// Positions of `t`, `u` and `v` (`v` only in the JVP).
    t: Option<usize>,
    u: Option<usize>,
    v: Option<usize>,
}

impl Compiled {
    /// The same code with a scratch of its own (`Kernel::duplicate`).
    fn fork(&self) -> Compiled {
        Compiled {
            kernel: self.kernel.duplicate(),
            fixed: self.fixed.clone(),
            t: self.t,
            u: self.u,
            v: self.v,
        }
    }

    fn new(f: &Function, name: &str, p: &[f64], x: &[f64]) -> Result<Compiled, Diag> {
        Compiled::wrap(jit::compile(f, name)?, p, x)
    }

    /// Binds `p` and `x` to a kernel, compiled now or linked into a standalone binary.
    fn wrap(kernel: Kernel, p: &[f64], x: &[f64]) -> Result<Compiled, Diag> {
        let name = kernel.name().to_string();
        let specs = kernel.args().to_vec();
        let mut fixed = Vec::with_capacity(specs.len());
        for spec in &specs {
            let buf = match spec.name.as_str() {
                "t" | "u" | "v" => Vec::new(),
                "p" => p.to_vec(),
                "x" => x.to_vec(),
                other => return Err(internal(format!("`{name}` takes an unexpected `{other}`"))),
            };
            if matches!(spec.name.as_str(), "p" | "x") && buf.len() != spec.len {
                return Err(Diag::error(
                    "glassbox::input_size",
                    format!(
                        "`{name}` needs {} values for `{}`, got {}",
                        spec.len,
                        spec.name,
                        buf.len()
                    ),
                )
                .help(
                    "give one value per declared input element (parameters come from the model)",
                ));
            }
            fixed.push(buf);
        }
        if fixed.len() > MAX_ARGS {
            return Err(internal(format!(
                "`{name}` takes {} arguments",
                fixed.len()
            )));
        }
        let arg = |n: &str| specs.iter().position(|a| a.name == n);
        Ok(Compiled {
            t: arg("t"),
            u: arg("u"),
            v: arg("v"),
            kernel,
            fixed,
        })
    }

    fn call(&self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        let tt = [t];
        // At most `t, u, p, x, v`: an array on the stack, no allocation per call.
        let mut refs: [&[f64]; MAX_ARGS] = [&[]; MAX_ARGS];
        for (i, b) in self.fixed.iter().enumerate().take(MAX_ARGS) {
            refs[i] = if Some(i) == self.t {
                &tt
            } else if Some(i) == self.u {
                u
            } else if Some(i) == self.v {
                v
            } else {
                b
            };
        }
        let n = self.fixed.len();
        // More arguments than MAX_ARGS cannot occur (checked in `new`); `get` keeps it a NaN.
        let called = refs.get(..n).map(|r| self.kernel.call(r, out));
        if !matches!(called, Some(Ok(()))) {
            out.fill(f64::NAN);
        }
    }
}

pub struct JitSde {
    drift: Compiled,
    diffusion: Compiled,
    /// The diffusion IR, kept to build its JVP on first use (`None` when linked).
    diffusion_ir: Option<Function>,
    /// `None` until first used; `Err` after a failed build (then the JVP answers NaN).
    jvp: Option<Result<Compiled, Diag>>,
    p: Vec<f64>,
    x: Vec<f64>,
    noise: NoiseMap,
    name: String,
    compile_time: Duration,
    /// From the drift's IR (for linked kernels, as recorded when they were compiled).
    drift_reads_t: bool,
}

fn internal(msg: String) -> Diag {
    Diag::error("glassbox::internal", msg)
        .help("this is a bug in glassbox; please report it with the model file")
}

impl JitSde {
    /// The same SDE on the same compiled kernels with buffers of its own: one per thread of
    /// `solve --paths` (`solve_sde_on`); it computes exactly what this one computes.
    pub fn fork(&self) -> JitSde {
        JitSde {
            drift: self.drift.fork(),
            diffusion: self.diffusion.fork(),
            diffusion_ir: self.diffusion_ir.clone(),
            jvp: self
                .jvp
                .as_ref()
                .map(|j| j.as_ref().map(Compiled::fork).map_err(Clone::clone)),
            p: self.p.clone(),
            x: self.x.clone(),
            noise: self.noise.clone(),
            name: self.name.clone(),
            compile_time: self.compile_time,
            drift_reads_t: self.drift_reads_t,
        }
    }

    /// Compiles the drift and diffusion of an SDE model with its parameters' initial values
    /// and inputs `x` (empty for a model without `input`s).
    pub fn new(model: &Model, x: &[f64]) -> Result<JitSde, Diag> {
        JitSde::with_params(model, &crate::solve::param_values(model), x)
    }

    pub fn with_params(model: &Model, p: &[f64], x: &[f64]) -> Result<JitSde, Diag> {
        let drift_ir = lower::lower(model, lower::Part::Field)?;
        let diffusion_ir = lower::lower(model, lower::Part::Diffusion)?;
        let n = model.state_size;
        for (what, f) in [("drift", &drift_ir), ("diffusion", &diffusion_ir)] {
            if f.output_len() != n || f.arg_index("u").is_none() {
                return Err(internal(format!(
                    "the {what} returns {} values for {n} states, or takes no `u`",
                    f.output_len()
                )));
            }
        }
        let drift = Compiled::new(&drift_ir, &format!("{}.drift", model.name), p, x)?;
        let diffusion = Compiled::new(&diffusion_ir, &format!("{}.diffusion", model.name), p, x)?;
        let compile_time = drift.kernel.compile_time() + diffusion.kernel.compile_time();
        Ok(JitSde {
            drift,
            diffusion,
            diffusion_ir: Some(diffusion_ir),
            jvp: None,
            p: p.to_vec(),
            x: x.to_vec(),
            noise: NoiseMap::from_model(model),
            name: model.name.clone(),
            compile_time,
            drift_reads_t: drift_ir.reads("t"),
        })
    }

    /// The SDE of kernels compiled ahead of time (a standalone binary's): drift, diffusion and,
    /// when linked (Milstein), the diffusion's JVP, with parameters `p` and no inputs;
    /// `drift_reads_t` as the drift's IR said when it was compiled.
    pub fn linked(
        drift: Kernel,
        diffusion: Kernel,
        jvp: Option<Kernel>,
        noise: NoiseMap,
        p: &[f64],
        drift_reads_t: bool,
    ) -> Result<JitSde, Diag> {
        let name = drift.name().to_string();
        let missing = || internal(format!("`{name}` has no linked diffusion JVP"));
        Ok(JitSde {
            drift: Compiled::wrap(drift, p, &[])?,
            diffusion: Compiled::wrap(diffusion, p, &[])?,
            diffusion_ir: None,
            jvp: Some(jvp.map_or_else(|| Err(missing()), |k| Compiled::wrap(k, p, &[]))),
            p: p.to_vec(),
            x: Vec::new(),
            noise,
            name,
            compile_time: Duration::ZERO,
            drift_reads_t,
        })
    }

    /// Compiles the diffusion's JVP now (it is otherwise compiled on first use), so its
    /// compile time is not counted as solve time.
    pub fn prepare_jvp(&mut self) -> Result<(), Diag> {
        if let (None, Some(diffusion)) = (&self.jvp, &self.diffusion_ir) {
            let built = ir::jvp(diffusion, "u", "v")
                .map_err(lower::internal)
                .and_then(|f| {
                    Compiled::new(
                        &f,
                        &format!("{}.diffusion_jvp", self.name),
                        &self.p,
                        &self.x,
                    )
                });
            if let Ok(c) = &built {
                self.compile_time += c.kernel.compile_time();
            }
            self.jvp = Some(built);
        }
        match &self.jvp {
            Some(Err(d)) => Err(d.clone()),
            _ => Ok(()),
        }
    }

    /// Compile time of every kernel compiled so far.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }
}

impl SdeField for JitSde {
    fn dim(&self) -> usize {
        self.noise.dim()
    }
    fn noise(&self) -> &NoiseMap {
        &self.noise
    }
    fn drift(&mut self, t: f64, u: &[f64], du: &mut [f64]) {
        self.drift.call(t, u, &[], du)
    }
    fn diffusion(&mut self, t: f64, u: &[f64], g: &mut [f64]) {
        self.diffusion.call(t, u, &[], g)
    }
    fn diffusion_jvp(&mut self, t: f64, u: &[f64], v: &[f64], out: &mut [f64]) {
        let _ = self.prepare_jvp();
        match &self.jvp {
            Some(Ok(c)) => c.call(t, u, v, out),
            _ => out.fill(f64::NAN),
        }
    }
    fn drift_reads_t(&self) -> bool {
        self.drift_reads_t
    }
}
