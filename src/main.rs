fn main() -> std::process::ExitCode {
    docker_reroll::main()
}
