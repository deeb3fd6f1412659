//! Replays every input kept under `tests/fuzz-regressions/<target>/`
//! (seeds, and any crash `scripts/fuzz.sh` found) through the fuzz checks.

mod fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no inputs under {}", dir.display());
}

#[test]
fn lock_name_inputs() {
    replay("lock_name", fuzz_checks::lock_name);
}

#[test]
fn net_unix_inputs() {
    replay("net_unix", fuzz_checks::net_unix);
}

#[test]
fn signal_inputs() {
    replay("signal", fuzz_checks::signal);
}

#[test]
fn protocol_inputs() {
    replay("protocol", fuzz_checks::protocol);
}
