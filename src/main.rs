use std::process::ExitCode;

fn main() -> ExitCode {
    glassbox::cli::main()
}
