//! `abslock`, for local locks: the cluster engines' code is not in this
//! binary; `--backend` with an engine execs `abslock-cluster` beside it.
//!
//! Against glibc its `main` is a C `main` that skips std's runtime start,
//! which costs about as much as the rest of starting a C program: see
//! `abslock_cli::start`.
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() -> std::process::ExitCode {
    abslock_cli::main(abslock_cli::Engines::helper())
}

/// The C entry point; glibc gives std the arguments through its
/// `.init_array` hook, so they are not needed here.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    abslock_cli::start::prepare();
    let code = abslock_cli::run(abslock_cli::Engines::helper());
    abslock_cli::start::finish();
    std::ffi::c_int::from(code)
}
