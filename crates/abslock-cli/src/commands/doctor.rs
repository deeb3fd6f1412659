//! `abslock doctor`: the kernel rules of `docs/semantics.md`, checked on
//! this machine by the same experiments the test suite runs.

use std::time::Instant;

use abslock::semantics::{Outcome, CHECKS};
use serde_json::json;

use crate::cli::DoctorArgs;
use crate::exit::{self, Failure};
use crate::out::outln;

/// Runs every check; exit 0 if none failed, 1 otherwise.
pub fn doctor(args: &DoctorArgs) -> Result<u8, Failure> {
    let start = Instant::now();
    let results: Vec<_> = CHECKS.iter().map(|c| (c, c.run())).collect();
    let failed = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Fail(_)))
        .count();
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|(c, o)| {
                let (status, detail) = match o {
                    Outcome::Pass(d) => ("pass", d),
                    Outcome::Fail(d) => ("fail", d),
                    Outcome::Skip(d) => ("skip", d),
                };
                json!({"rule": c.rule, "check": c.id, "claim": c.claim, "status": status, "detail": detail})
            })
            .collect();
        outln!(
            "{}",
            json!({"kernel": kernel(), "checks": rows, "failed": failed})
        );
    } else {
        outln!(
            "abslock doctor: kernel {}; rules from docs/semantics.md\n",
            kernel()
        );
        let width = CHECKS.iter().map(|c| c.id.len()).max().unwrap_or(5);
        outln!("{:<5} {:<width$} {:<6} DETAIL", "RULE", "CHECK", "RESULT");
        for (c, o) in &results {
            let (status, detail) = match o {
                Outcome::Pass(d) => ("pass", d),
                Outcome::Fail(d) => ("FAIL", d),
                Outcome::Skip(d) => ("skip", d),
            };
            outln!("{:<5} {:<width$} {:<6} {}", c.rule, c.id, status, detail);
        }
        outln!(
            "\n{} passed, {} failed, {} skipped in {:.0} ms",
            results
                .iter()
                .filter(|(_, o)| matches!(o, Outcome::Pass(_)))
                .count(),
            failed,
            results
                .iter()
                .filter(|(_, o)| matches!(o, Outcome::Skip(_)))
                .count(),
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::CONFLICT
    })
}

fn kernel() -> String {
    let u = rustix::system::uname();
    format!(
        "{} {}",
        u.sysname().to_string_lossy(),
        u.release().to_string_lossy()
    )
}
