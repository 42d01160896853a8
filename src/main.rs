fn main() -> std::process::ExitCode {
    sso_bridge::cli::main()
}
