//! Tests of the symbolic IR (`src/ir`): one test binary, one module per concern.

mod check;
mod diff;
mod eval;
mod examples;
mod fold_eval;
mod graph;
mod math;
mod models;
mod print;
mod prop;
