//! The stdlib modules written in glassbox itself, embedded so the binary works from any
//! directory: `use nn` resolves to `stdlib/nn.gbx`, `use math` to `stdlib/math.gbx`.

/// `(module name, source text)` for every stdlib module.
pub const STDLIB: [(&str, &str); 2] = [
    ("nn", include_str!("../../stdlib/nn.gbx")),
    ("math", include_str!("../../stdlib/math.gbx")),
];

/// The source of a stdlib module.
pub fn stdlib_module(name: &str) -> Option<&'static str> {
    STDLIB.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
