//! The shared library's soname: `libabslock.so.0`, the name C programs
//! link against (`-labslock`) and record. The 0 is the ABI version: it
//! changes when a function of `include/abslock.h` changes incompatibly.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libabslock.so.0");
}
