//! One test per kernel rule of `docs/semantics.md`, each running the
//! experiment of `abslock::semantics` (the same code `abslock doctor` runs).
//! Root-only checks are reported as skipped when not root; as root (CI),
//! they must pass.

use abslock::semantics::{find, Outcome, CHECKS};

mod common;

fn assert_rule(id: &str) {
    // One check at a time: a fork() in another test thread would hold
    // copies of this one's descriptors until it execs (rule 2).
    let _serial = common::serial();
    let check = find(id).unwrap_or_else(|| panic!("no check {id}"));
    match check.run() {
        Outcome::Pass(detail) => println!("rule {} {id}: {detail}", check.rule),
        // As root (CI) only what the system forbids may skip (io_uring
        // disabled, ptrace refused), never a root-only check.
        Outcome::Skip(why) if !rustix::process::geteuid().is_root() || !check.needs_root => {
            println!("rule {} {id}: skipped ({why})", check.rule)
        }
        other => panic!(
            "rule {} ({}) does not hold: {other}",
            check.rule, check.claim
        ),
    }
}

macro_rules! rules {
    ($($id:ident),* $(,)?) => {
        $(#[test] fn $id() { assert_rule(stringify!($id)); })*

        #[test]
        fn every_check_has_a_test() {
            let tested = [$(stringify!($id)),*];
            for c in CHECKS {
                assert!(tested.contains(&c.id), "check {} has no test", c.id);
            }
            assert_eq!(tested.len(), CHECKS.len());
        }
    };
}

rules!(
    close_frees,
    exit_frees,
    sigkill_frees,
    crash_frees,
    ptrace_exit_stop_delays,
    io_uring_fixed_file_delays,
    gc_cycle_delays,
    fork_child_keeps,
    cloexec_stops_exec_leak,
    exec_keeps_without_cloexec,
    scm_rights_keeps,
    pidfd_getfd_copies,
    clone_files_shares_one_table,
    in_flight_dropped_with_the_queue,
    netns_separates,
    netns_of_creation,
    any_user_can_squat,
    peercred_without_accept,
    peerpidfd_names_the_holder,
    unlistened_refuses,
    backlog_fills,
    accepted_connection_does_not_hold,
    waiter_gets_hangup,
    length_limit,
    autobind_collides,
    every_byte_counts,
    types_do_not_collide,
);
