//! Stage 2: AST → checked model (names, shapes, stdlib nets, options, data declarations).
