//! A serialisable overview of a checked model, for the CLI's `check` command.

use serde::Serialize;

use super::model::*;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub name: String,
    pub kind: ModelKind,
    pub states: Vec<SummaryItem>,
    pub state_size: usize,
    /// Scalars in fixed params.
    pub params_fixed: usize,
    /// Scalars in learned params (user `learn` params and every net layer).
    pub params_learned: usize,
    pub nets: Vec<SummaryNet>,
    pub equations: usize,
    pub solver: Option<String>,
    pub objective: Vec<String>,
    pub optimizer: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SummaryItem {
    pub name: String,
    pub shape: String,
    pub size: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SummaryNet {
    pub name: String,
    pub kind: NetKind,
    pub sizes: Vec<usize>,
    pub act: Activation,
    pub params: usize,
}

pub fn summary(m: &Model) -> Summary {
    let count = |learn: bool| {
        m.params
            .iter()
            .filter(|p| p.learn == learn)
            .map(|p| p.shape.size())
            .sum()
    };
    Summary {
        name: m.name.clone(),
        kind: m.kind,
        states: m
            .states
            .iter()
            .map(|s| SummaryItem {
                name: s.name.clone(),
                shape: s.shape.to_string(),
                size: s.shape.size(),
            })
            .collect(),
        state_size: m.state_size,
        params_fixed: count(false),
        params_learned: count(true),
        nets: m
            .nets
            .iter()
            .map(|n| SummaryNet {
                name: n.name.clone(),
                kind: n.kind,
                sizes: n.sizes.clone(),
                act: n.act,
                params: n
                    .layers
                    .iter()
                    .flat_map(|l| [l.weight, l.bias])
                    .filter_map(|i| m.params.get(i))
                    .map(|p| p.shape.size())
                    .sum(),
            })
            .collect(),
        equations: m.equations.len(),
        solver: m.solve.as_ref().map(|s| s.method.name().to_string()),
        objective: m
            .objective
            .as_ref()
            .map_or_else(Vec::new, |o| o.terms.iter().map(term_name).collect()),
        optimizer: m.train.as_ref().map(|t| {
            match t.optimizer {
                Optimizer::Adam { .. } => "adam",
                Optimizer::AdamW { .. } => "adamw",
                Optimizer::Sgd { .. } => "sgd",
                Optimizer::RmsProp { .. } => "rmsprop",
            }
            .to_string()
        }),
    }
}

fn term_name(t: &Term) -> String {
    let base = match &t.kind {
        TermKind::Loss {
            loss: Loss::Mse, ..
        } => "mse".to_string(),
        TermKind::Loss { loss: Loss::L1, .. } => "l1".to_string(),
        TermKind::Loss {
            loss: Loss::CrossEntropy,
            ..
        } => "cross_entropy".to_string(),
        TermKind::Moments { samples, .. } => format!("moments(samples = {samples})"),
        TermKind::Observable { observable, sample } => {
            let o = match observable {
                Observable::ErrorEstimate => "error_estimate",
                Observable::Stiffness => "stiffness",
                Observable::Nfe => "nfe",
            };
            match sample {
                Some(Sampling::Unbiased) => format!("{o}(sample = unbiased)"),
                Some(Sampling::Biased) => format!("{o}(sample = biased)"),
                None => o.to_string(),
            }
        }
        TermKind::Kinetic => "kinetic".to_string(),
        TermKind::JacobianFrobenius { estimator: None } => "jacobian_frobenius".to_string(),
        TermKind::JacobianFrobenius { estimator: Some(e) } => format!(
            "jacobian_frobenius(estimator = {})",
            match e {
                Estimator::Exact => "exact",
                Estimator::Hutchinson => "hutchinson",
            }
        ),
        TermKind::Taylor { order } => format!("taylor({order})"),
        TermKind::Steer { b } => format!("steer({b})"),
        TermKind::WeightDecay => "weight_decay".to_string(),
    };
    match t.coef {
        Coef::Const { value: 1.0 } => base,
        Coef::Const { value } => format!("{value} * {base}"),
        Coef::Decay { from, to } => format!("decay({from} -> {to}) * {base}"),
    }
}
