//! Chaos: at least 16 processes contend for one lock while a killer
//! SIGKILLs holders and waiters at random. Afterwards the log must show
//! mutual exclusion and the lock must still be free to take.
//!
//! Runs for `ABSLOCK_CHAOS_SECS` seconds (default 15; CI uses the default).
//! Each contender appends `in PID` on entering its critical section and
//! `out PID` on leaving (O_APPEND, one write each). Two overlapping critical
//! sections whose first holder survives would put another line between an
//! `in P` and its `out P`, so the check is: every `out P` directly follows
//! `in P`. A holder killed inside its section leaves an `in P` without
//! `out P`, which is fine: its death released the lock.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use abslock::Lock;
use common::{arg, spawn, unique, Helper};

#[test]
#[ignore = "entry point of helper processes, run by the other tests"]
fn helper() {
    common::helper_main();
}

const CONTENDERS: usize = 16;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn chaos_never_two_holders_never_stuck() {
    let _serial = common::serial();
    let secs: u64 = std::env::var("ABSLOCK_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let name = unique("chaos");
    let log = std::env::temp_dir().join(format!("abslock-chaos-{}.log", std::process::id()));
    let log = log.to_str().unwrap().to_string();
    let _ = std::fs::remove_file(&log);
    let start_contender = || spawn("contend", &[arg(&name), &log]);
    let mut contenders: Vec<Helper> = (0..CONTENDERS).map(|_| start_contender()).collect();
    let mut rng = Rng(u64::from(std::process::id()) | 1);
    let (mut kills, mut holder_kills) = (0usize, 0usize);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5 + rng.next() % 30));
        // Half the time aim at the current holder (the last `in` without
        // its `out`), otherwise at anyone, most likely a waiter.
        let last = std::fs::read_to_string(&log).unwrap_or_default();
        let holder = last
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("in "))
            .and_then(|p| p.parse::<u32>().ok());
        let victim = match holder {
            Some(pid) if rng.next().is_multiple_of(2) => {
                contenders.iter().position(|c| c.pid() == pid)
            }
            _ => None,
        }
        .unwrap_or_else(|| (rng.next() % contenders.len() as u64) as usize);
        if Some(contenders[victim].pid()) == holder {
            holder_kills += 1;
        }
        let mut dead = contenders.swap_remove(victim);
        dead.kill(libc::SIGKILL);
        dead.wait();
        kills += 1;
        contenders.push(start_contender());
    }
    for c in &mut contenders {
        c.kill(libc::SIGKILL);
        c.wait();
    }
    drop(contenders);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut violations = Vec::new();
    let mut entries: HashMap<&str, usize> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(pid) = line.strip_prefix("out ") {
            if i == 0 || lines[i - 1] != format!("in {pid}") {
                violations.push(format!(
                    "line {}: '{line}' after '{}'",
                    i + 1,
                    if i == 0 { "" } else { lines[i - 1] }
                ));
            }
        } else if let Some(pid) = line.strip_prefix("in ") {
            *entries.entry(pid).or_default() += 1;
        } else {
            violations.push(format!("line {}: garbled '{line}'", i + 1));
        }
    }
    let handovers = lines.iter().filter(|l| l.starts_with("in ")).count();
    // Straight to the stderr handle: libtest captures print! and eprint!
    // of passing tests, and these counts are meant to show in CI logs.
    let _ = writeln!(
        std::io::stderr(),
        "chaos: {secs}s, {CONTENDERS} contenders, {handovers} hand-overs by {} processes, \
         {kills} kills ({holder_kills} of holders), {} violations",
        entries.len(),
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "mutual exclusion violated:\n{}",
        violations.join("\n")
    );
    assert!(
        handovers > 100,
        "too little progress: {handovers} hand-overs"
    );
    assert!(holder_kills > 0, "no holder was ever killed");
    // Never stuck: with every contender dead, the lock is free.
    Lock::new(name)
        .try_acquire()
        .expect("the lock is free after the chaos");
    std::fs::remove_file(&log).unwrap();
}
