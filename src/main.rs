//! The `cport` command line: everything is in the library's `cli` module.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    cport::cli::main()
}
