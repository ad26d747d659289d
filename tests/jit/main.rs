//! Tests of the Cranelift JIT (`src/jit`): every kernel against the reference interpreter.
//! One test binary, one module per concern.

mod batch;
mod check;
mod dense;
mod examples;
mod prop;
mod simd;
mod special;
