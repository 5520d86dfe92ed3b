//! The `cascade` command.

fn main() -> std::process::ExitCode {
    llm_cli::main()
}
