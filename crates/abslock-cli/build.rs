//! Links the unwinder into the glibc build instead of loading
//! `libgcc_s.so.1` at every start.
//!
//! std's unwinder comes from `libgcc_s.so.1` on `*-linux-gnu`. Loading it
//! costs the dynamic loader a library to map and relocate, and its
//! constructor, `__cpu_indicator_init`, executes `cpuid`, which traps to
//! the hypervisor in a virtual machine: about 70 µs of every
//! `abslock run -n NAME true` on the benchmark VM (BENCHMARKS.md, perf
//! record), as much as the whole difference to `flock -n`, which does not
//! load it. The same unwinder is in `libgcc_eh.a` (what `gcc -static-libgcc`
//! links): linked whole before std, it defines every `_Unwind_*` symbol,
//! so the `-lgcc_s` that std asks for later resolves nothing and, under
//! `--as-needed` (rustc's default), is not recorded as needed.
//!
//! When the C compiler cannot name the archive, or the build is a cross
//! build, nothing changes: the binary loads `libgcc_s.so.1` as before.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CC");
    let var = |key: &str| env::var(key).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "crt-static");
    // The C compiler asked is the host's: a cross build keeps libgcc_s.
    let native = var("HOST") == var("TARGET");
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || static_crt
        || !native
    {
        return;
    }
    let Some(archive) = gcc_eh() else {
        println!("cargo::warning=libgcc_eh.a not found: abslock will load libgcc_s.so.1");
        return;
    };
    if let Some(dir) = archive.parent() {
        println!("cargo::rustc-link-search=native={}", dir.display());
        println!("cargo::rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}

/// The C compiler's `libgcc_eh.a`, as `cc -print-file-name` finds it.
fn gcc_eh() -> Option<PathBuf> {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // An unknown file is printed back as the bare name.
    (path.is_absolute() && path.is_file()).then_some(path)
}
