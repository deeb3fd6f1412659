//! `abslock`, for local locks: the cluster engines' code is not in this
//! binary; `--backend` with an engine execs `abslock-cluster` beside it.

fn main() -> std::process::ExitCode {
    abslock_cli::main(abslock_cli::Engines::helper())
}
