//! `train OPT(options), key = value, ...`: the optimiser and its hyper-parameters (defaults
//! filled in), and the run's settings — exactly one of `iterations`/`epochs`, `batch` (a size or
//! `windows(B, length = L)`), `split`, `seed`, `checkpoint_every`.

use super::checker::Checker;
use super::model::*;
use super::options::Want;
use crate::diag::{Diag, did_you_mean};
use crate::syntax::ast::{ExprKind, TrainClause};

const OPTIMIZERS: [&str; 4] = ["adam", "adamw", "sgd", "rmsprop"];
const SETTINGS: [&str; 6] = [
    "iterations",
    "epochs",
    "batch",
    "split",
    "seed",
    "checkpoint_every",
];

impl Checker<'_> {
    pub fn train_clause(&mut self, t: &TrainClause) {
        let call = &t.optimizer;
        let name = call.callee.name.as_str();
        let spec: &[(&str, f64, Want)] = match name {
            "adam" | "adamw" => &[
                ("lr", 1e-3, Want::Positive),
                ("beta1", 0.9, Want::UnitInterval),
                ("beta2", 0.999, Want::UnitInterval),
                ("eps", 1e-8, Want::Positive),
                (
                    "weight_decay",
                    if name == "adamw" { 1e-2 } else { 0.0 },
                    Want::NonNegative,
                ),
            ],
            "sgd" => &[
                ("lr", 1e-2, Want::Positive),
                ("momentum", 0.0, Want::UnitInterval),
            ],
            "rmsprop" => &[
                ("lr", 1e-2, Want::Positive),
                ("decay", 0.99, Want::UnitInterval),
                ("eps", 1e-8, Want::Positive),
                ("momentum", 0.0, Want::UnitInterval),
            ],
            _ => {
                let help = match did_you_mean(name, OPTIMIZERS) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "the optimisers are `adam`, `adamw`, `sgd` and `rmsprop`".into(),
                };
                self.error(
                    "glassbox::unknown_optimizer",
                    call.callee.span,
                    format!("there is no optimiser `{name}`"),
                    "unknown optimiser",
                    help,
                );
                self.train_settings(t);
                return;
            }
        };
        let known: Vec<&str> = spec.iter().map(|(k, _, _)| *k).collect();
        let (_, named) = self.named_options(&call.args, 0, &known, name);
        let mut ok = true;
        let mut vals = Vec::new();
        for (key, default, want) in spec {
            let v = match named.get(key) {
                Some((_, e)) => self.option_number(key, e, *want),
                None => Some(*default),
            };
            ok &= v.is_some();
            vals.push(v.unwrap_or(*default));
        }
        let get = |i: usize| vals.get(i).copied().unwrap_or(0.0);
        let optimizer = match name {
            "adam" => Optimizer::Adam {
                lr: get(0),
                beta1: get(1),
                beta2: get(2),
                eps: get(3),
                weight_decay: get(4),
            },
            "adamw" => Optimizer::AdamW {
                lr: get(0),
                beta1: get(1),
                beta2: get(2),
                eps: get(3),
                weight_decay: get(4),
            },
            "sgd" => Optimizer::Sgd {
                lr: get(0),
                momentum: get(1),
            },
            _ => Optimizer::RmsProp {
                lr: get(0),
                decay: get(1),
                eps: get(2),
                momentum: get(3),
            },
        };
        let settings = self.train_settings(t);
        if let (true, Some((stop, batch, split, seed, checkpoint_every))) = (ok, settings) {
            self.m.train = Some(TrainSpec {
                optimizer,
                stop,
                batch,
                split,
                seed,
                checkpoint_every,
                span: call.span,
            });
        }
    }

    #[allow(clippy::type_complexity)]
    fn train_settings(
        &mut self,
        t: &TrainClause,
    ) -> Option<(Stop, Option<Batch>, Option<f64>, Option<u64>, Option<u64>)> {
        let (_, named) = self.named_options(&t.settings, 0, &SETTINGS, "train");
        let mut ok = true;
        let mut int = |c: &mut Self, key: &str, want: Want| -> Option<u64> {
            let (_, e) = named.get(key)?;
            let v = c.option_number(key, e, want);
            ok &= v.is_some();
            v.map(|x| x as u64)
        };
        let iterations = int(self, "iterations", Want::PositiveInt);
        let epochs = int(self, "epochs", Want::PositiveInt);
        let seed = int(self, "seed", Want::Int);
        let checkpoint_every = int(self, "checkpoint_every", Want::PositiveInt);
        let stop = match (named.get("iterations"), named.get("epochs")) {
            (Some(_), Some((e, _))) => {
                let first = named.get("iterations").map(|(n, _)| n.span);
                let mut d = Diag::error(
                    "glassbox::conflicting_settings",
                    "`iterations` and `epochs` are both given",
                )
                .label(e.span, "second stopping rule");
                if let Some(f) = first {
                    d = d.label(f, "first here");
                }
                self.push(d.help("give exactly one of `iterations` and `epochs`"));
                None
            }
            (Some(_), None) => iterations.map(|n| Stop::Iterations { n }),
            (None, Some(_)) => epochs.map(|n| Stop::Epochs { n }),
            (None, None) => {
                self.error(
                    "glassbox::missing_setting",
                    t.optimizer.callee.span,
                    "training needs a length: `iterations` or `epochs`",
                    "how long?",
                    "add `, iterations = 1000` or `, epochs = 10` after the optimiser",
                );
                None
            }
        };
        let split = match named.get("split") {
            Some((n, e)) => {
                let v = self.option_number(&n.name, e, Want::Fraction);
                ok &= v.is_some();
                v
            }
            None => None,
        };
        let batch = match named.get("batch") {
            None => None,
            Some((_, e)) => match &e.kind {
                ExprKind::Call(c) if c.callee.name == "windows" => {
                    let (pos, opts) = self.named_options(&c.args, 1, &["length"], "windows");
                    let count = match pos.first() {
                        Some(a) => self.option_number("windows", &a.value, Want::PositiveInt),
                        None => {
                            self.error(
                                "glassbox::bad_option_value",
                                c.span,
                                "`windows` needs the number of windows per step",
                                "no count",
                                "write `batch = windows(20, length = 10)`",
                            );
                            None
                        }
                    };
                    let length = match opts.get("length") {
                        Some((_, e)) => match self.option_number("length", e, Want::PositiveInt) {
                            // A window of one observation has nothing to integrate over.
                            Some(l) if l < 2.0 => {
                                self.error(
                                    "glassbox::bad_option_value",
                                    e.span,
                                    format!("a window of length {l} has nothing to fit"),
                                    "at least 2",
                                    "a window is a start observation and the ones the solve predicts: `length = 10`",
                                );
                                None
                            }
                            other => other,
                        },
                        None => {
                            self.error(
                                "glassbox::bad_option_value",
                                c.span,
                                "`windows` needs a window `length`",
                                "no length",
                                "write `batch = windows(20, length = 10)`",
                            );
                            None
                        }
                    };
                    match (count, length) {
                        (Some(c), Some(l)) => Some(Batch::Windows {
                            count: c as u64,
                            length: l as u64,
                        }),
                        _ => {
                            ok = false;
                            None
                        }
                    }
                }
                _ => match self.option_number("batch", e, Want::PositiveInt) {
                    Some(n) => Some(Batch::Size { n: n as u64 }),
                    None => {
                        ok = false;
                        None
                    }
                },
            },
        };
        let stop = stop?;
        ok.then_some((stop, batch, split, seed, checkpoint_every))
    }
}
