//! Reusing the forward solve's `tanh` activations in the adjoint's VJPs (training).
//!
//! With [`JitVjpField::share_activations`](super::JitVjpField::share_activations) on, each
//! field evaluation runs the forward kernel of [`ir::share_tanh`] and records its activations
//! under the exact bits of `(t, u)`; a VJP at a recorded point reads them instead of
//! recomputing `tanh` (and what only fed it). The adjoint evaluates its VJPs at the solver's own
//! stage arguments, bit for bit, so every stage of an accepted step hits; anything else (a miss,
//! a colliding hash) runs the ordinary VJP. The recorded values are the ones the VJP would have
//! computed (same expression, same code), so gradients are unchanged bit for bit.
//!
//! Memory: per evaluation (rejected steps included) the activations plus `1 + dim` key words,
//! until the parameters or inputs change (which clears the record).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::diag::Diag;
use crate::ir::{self, Function};
use crate::jit::{self, Bound};

pub(super) struct Activations {
    forward: Bound,
    pub(super) vjp: Bound,
    h_arg: usize,
    dim: usize,
    /// The forward kernel's output `[f, activations]`.
    out: Vec<f64>,
    /// Per record: `t` and `u` as bits (`1 + dim` words), and the activations.
    keys: Vec<u64>,
    values: Vec<f64>,
    index: HashMap<u64, u32, BuildHasherDefault<Premixed>>,
    /// VJPs that read recorded activations since the last clear.
    reused: usize,
}

impl Activations {
    /// `None` when the VJP recomputes no `tanh` of the field.
    pub(super) fn compile(
        f: &Function,
        v: &Function,
        name: &str,
    ) -> Result<Option<Activations>, Diag> {
        let Some(s) = ir::share_tanh(f, v, "h") else {
            return Ok(None);
        };
        let forward = jit::compile(&s.forward, &format!("{name}.field_h"))?;
        let vjp = jit::compile(&s.vjp, &format!("{name}.vjp_h"))?;
        let dim = f.output_len();
        Ok(Some(Activations {
            out: vec![0.0; forward.output_len()],
            forward: forward.bind(),
            vjp: vjp.bind(),
            h_arg: s.vjp.args.len() - 1,
            dim,
            keys: Vec::new(),
            values: Vec::new(),
            index: HashMap::default(),
            reused: 0,
        }))
    }

    /// Sets argument `i` of both kernels (the field's numbering) and forgets every record.
    pub(super) fn set_arg(&mut self, i: usize, values: &[f64]) -> Result<(), Diag> {
        self.clear();
        self.forward.set_arg(i, values)?;
        self.vjp.set_arg(i, values)
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.index.clear();
        self.reused = 0;
    }

    /// Evaluations recorded and VJPs that reused them, since the last clear.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.keys.len() / (1 + self.dim), self.reused)
    }

    /// The field at `(t, u)` into `du`, its activations recorded; `false` if it could not run.
    pub(super) fn eval(
        &mut self,
        (t_arg, u_arg): (usize, usize),
        t: f64,
        u: &[f64],
        du: &mut [f64],
    ) -> bool {
        super::field::set_t(&mut self.forward, t_arg, t);
        if self.forward.run_with(u_arg, u, &mut self.out).is_err() || du.len() != self.dim {
            return false;
        }
        du.copy_from_slice(&self.out[..self.dim]);
        // Records are appended (a repeated point gets a new one), so count them, not keys.
        let Ok(at) = u32::try_from(self.keys.len() / (1 + self.dim)) else {
            return true;
        };
        let key = hash(t, u);
        self.keys.push(t.to_bits());
        self.keys.extend(u.iter().map(|x| x.to_bits()));
        self.values.extend_from_slice(&self.out[self.dim..]);
        self.index.insert(key, at);
        true
    }

    /// Writes the activations recorded at `(t, u)` into the VJP's argument; `false` if none.
    pub(super) fn load(&mut self, t: f64, u: &[f64]) -> bool {
        let Some(&at) = self.index.get(&hash(t, u)) else {
            return false;
        };
        let (at, w) = (at as usize, 1 + self.dim);
        let key = &self.keys[at * w..(at + 1) * w];
        let same = key[0] == t.to_bits() && key[1..].iter().zip(u).all(|(k, x)| *k == x.to_bits());
        let len = self.out.len() - self.dim;
        match self.vjp.arg_mut(self.h_arg) {
            Some(dst) if same && u.len() == self.dim && dst.len() == len => {
                dst.copy_from_slice(&self.values[at * len..(at + 1) * len]);
                self.reused += 1;
                true
            }
            _ => false,
        }
    }
}

/// The bits of `(t, u)` mixed into one word (FxHash's step).
fn hash(t: f64, u: &[f64]) -> u64 {
    let mix = |h: u64, x: f64| (h.rotate_left(5) ^ x.to_bits()).wrapping_mul(0x517c_c1b7_2722_0a95);
    u.iter().fold(mix(0, t), |h, &x| mix(h, x))
}

/// A hasher for keys that are already mixed ([`hash`]).
#[derive(Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}
