//! The command-line front end (clap). Does the IO the core does not: reading files, printing.
