//! Drift, diffusion and the diffusion's JVP of many paths of one SDE at once:
//! [`SdeBatchField`] fills `out[a] = part(t[a], u[a])` for every slot `a` of a dense batch,
//! what the batched driver (`batched.rs`) asks once per evaluation of a step.
//!
//! [`JitBatchSde`] is a model's drift and diffusion (and, for Milstein, the diffusion's JVP
//! `ir::jvp(diffusion, "u", "v")`, the function [`super::JitSde`] compiles) as batched kernels
//! ([`JitBatchField`]): every dense layer one GEMM over the paths. [`PathByPath`] evaluates
//! any [`SdeField`] slot by slot: the batched driver on it is the per-path solve bit for bit
//! (the tests' reference).
//!
//! Invariant (as [`SdeField`]): evaluations never fail; a field that cannot answer writes NaN,
//! which the solver reports for the path it belongs to.

use std::time::Duration;

use super::field::{NoiseMap, SdeField};
use super::method::SdeMethod;
use crate::diag::Diag;
use crate::ir::{self, lower};
use crate::sema::Model;
use crate::solve::{BatchField, JitBatchField};

/// Which function of the SDE an evaluation calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdePart {
    Drift,
    Diffusion,
    /// `J_g(t, u)·v`.
    DiffusionJvp,
}

pub trait SdeBatchField {
    /// Length of one path's state.
    fn dim(&self) -> usize;
    /// Which process drives each component.
    fn noise(&self) -> &NoiseMap;
    /// For every slot `a` of the batch (`t.len()` of them): `out[a·n..(a+1)·n] =
    /// part(t[a], u[a·n..(a+1)·n])`, the JVP along `v[a·n..(a+1)·n]` (`v` is read by the JVP
    /// only).
    fn eval_batch(&mut self, part: SdePart, t: &[f64], u: &[f64], v: &[f64], out: &mut [f64]);
    /// As [`SdeField::drift_reads_t`].
    fn drift_reads_t(&self) -> bool {
        true
    }
    /// Whether a batch is evaluated as matrix products (GEMMs), so that solving paths together
    /// pays.
    fn uses_gemm(&self) -> bool {
        false
    }
}

impl<B: SdeBatchField + ?Sized> SdeBatchField for &mut B {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn noise(&self) -> &NoiseMap {
        (**self).noise()
    }
    fn eval_batch(&mut self, part: SdePart, t: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        (**self).eval_batch(part, t, u, v, out)
    }
    fn drift_reads_t(&self) -> bool {
        (**self).drift_reads_t()
    }
    fn uses_gemm(&self) -> bool {
        (**self).uses_gemm()
    }
}

/// An [`SdeField`] evaluated slot by slot.
pub struct PathByPath<S>(pub S);

impl<S: SdeField> SdeBatchField for PathByPath<S> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn noise(&self) -> &NoiseMap {
        self.0.noise()
    }
    fn eval_batch(&mut self, part: SdePart, t: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        let n = self.0.dim();
        for (a, &ta) in t.iter().enumerate() {
            let slot = a * n..(a + 1) * n;
            let (ua, oa) = (&u[slot.clone()], &mut out[slot.clone()]);
            match part {
                SdePart::Drift => self.0.drift(ta, ua, oa),
                SdePart::Diffusion => self.0.diffusion(ta, ua, oa),
                SdePart::DiffusionJvp => self.0.diffusion_jvp(ta, ua, &v[slot], oa),
            }
        }
    }
    fn drift_reads_t(&self) -> bool {
        self.0.drift_reads_t()
    }
}

/// A model's drift and diffusion (and the diffusion's JVP, when the method reads it) as
/// batched kernels with parameters set once.
pub struct JitBatchSde {
    drift: JitBatchField,
    diffusion: JitBatchField,
    jvp: Option<JitBatchField>,
    noise: NoiseMap,
    drift_reads_t: bool,
    /// `0..batch`: the paths share the (absent) inputs.
    rows: Vec<usize>,
}

impl JitBatchSde {
    /// Compiles the drift and diffusion of an SDE model without `input`s (the JVP too for
    /// Milstein) with parameters `p`.
    pub fn new(model: &Model, p: &[f64], method: SdeMethod) -> Result<JitBatchSde, Diag> {
        let drift_ir = lower::lower(model, lower::Part::Field)?;
        let diffusion_ir = lower::lower(model, lower::Part::Diffusion)?;
        let name = &model.name;
        let drift = JitBatchField::from_function(&drift_ir, &format!("{name}.drift.batch"), p)?;
        let diffusion =
            JitBatchField::from_function(&diffusion_ir, &format!("{name}.diffusion.batch"), p)?;
        let jvp = match method {
            SdeMethod::Milstein => {
                let f = ir::jvp(&diffusion_ir, "u", "v").map_err(lower::internal)?;
                let jvp_name = format!("{name}.diffusion_jvp.batch");
                Some(JitBatchField::from_function(&f, &jvp_name, p)?)
            }
            _ => None,
        };
        if drift.input_len() > 0 || drift.dim() != model.state_size {
            return Err(Diag::error(
                "glassbox::internal",
                format!("`{name}`: the batched SDE takes no inputs and one value per state"),
            )
            .help("this is a bug in glassbox; please report it with the model file"));
        }
        Ok(JitBatchSde {
            drift,
            diffusion,
            jvp,
            noise: NoiseMap::from_model(model),
            drift_reads_t: drift_ir.reads("t"),
            rows: Vec::new(),
        })
    }

    /// Compile time of its kernels.
    pub fn compile_time(&self) -> Duration {
        let jvp = self
            .jvp
            .as_ref()
            .map_or(Duration::ZERO, |j| j.compile_time());
        self.drift.compile_time() + self.diffusion.compile_time() + jvp
    }
}

impl SdeBatchField for JitBatchSde {
    fn dim(&self) -> usize {
        self.noise.dim()
    }
    fn noise(&self) -> &NoiseMap {
        &self.noise
    }
    fn eval_batch(&mut self, part: SdePart, t: &[f64], u: &[f64], v: &[f64], out: &mut [f64]) {
        if self.rows.len() != t.len() {
            self.rows.clear();
            self.rows.extend(0..t.len());
        }
        let rows = &self.rows;
        match part {
            SdePart::Drift => self.drift.eval_batch(rows, t, u, out),
            SdePart::Diffusion => self.diffusion.eval_batch(rows, t, u, out),
            SdePart::DiffusionJvp => match self.jvp.as_mut() {
                Some(jvp) => jvp.eval_along(rows, t, u, v, out),
                None => out.fill(f64::NAN),
            },
        }
    }
    fn drift_reads_t(&self) -> bool {
        self.drift_reads_t
    }
    fn uses_gemm(&self) -> bool {
        self.drift.uses_gemm() || self.diffusion.uses_gemm()
    }
}
