//! The benchmark driver: whole-process experiments (hand-over latency,
//! contention, command cost, queries, memory) plus the criterion results of
//! `benches/acquire.rs`, written as `BENCHMARKS.md` with SVG plots.
//!
//! ```text
//! abslock-bench report --out DIR [--criterion DIR] [--smoke]
//! abslock-bench role ...        (the processes the experiments start)
//! ```
//! `scripts/bench.sh` builds everything in release mode and runs it;
//! `--smoke` runs a few iterations of each, for CI.

mod measure;
mod plot;
mod roles;
mod stats;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use measure::{Ending, Env};
use roles::Method;
use stats::{summary, Summary};

struct Config {
    out: PathBuf,
    criterion: Option<PathBuf>,
    smoke: bool,
    /// `--only SECTION`: run one section (while working on it).
    only: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("role") => roles::main(&args[1..]),
        Some("report") => {
            let mut config = Config {
                out: PathBuf::from("."),
                criterion: None,
                smoke: false,
                only: None,
            };
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--out" => config.out = it.next().map(PathBuf::from).unwrap_or_default(),
                    "--criterion" => config.criterion = it.next().map(PathBuf::from),
                    "--smoke" => config.smoke = true,
                    "--only" => config.only = it.next().cloned(),
                    other => usage(&format!("unknown option {other}")),
                }
            }
            report(&config);
        }
        _ => usage("expected 'report' or 'role'"),
    }
}

fn usage(why: &str) -> ! {
    eprintln!(
        "abslock-bench: {why}; usage: abslock-bench report --out DIR [--criterion DIR] [--smoke] \
         [--only library|command|cli-handover|order|handover|contention|queries|memory]"
    );
    std::process::exit(64);
}

fn fmt_us(us: f64) -> String {
    if us < 0.0 {
        return format!("−{}", fmt_us(-us));
    }
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us >= 10.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.2} µs")
    }
}

fn shell(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn report(config: &Config) {
    let results = config.out.join("bench/results");
    std::fs::create_dir_all(&results).expect("create bench/results");
    let me = std::env::current_exe().expect("own path");
    let abslock =
        std::env::var_os("ABSLOCK_BIN").map_or_else(|| me.with_file_name("abslock"), PathBuf::from);
    assert!(
        abslock.exists(),
        "{} not found: build abslock-cli or set ABSLOCK_BIN",
        abslock.display()
    );
    let dir = std::env::temp_dir().join(format!("abslock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let env = Env {
        abslock,
        abslock_static: std::env::var_os("ABSLOCK_STATIC_BIN")
            .map(PathBuf::from)
            .filter(|p| p.exists()),
        me,
        dir: dir.clone(),
        tag: format!("bench/{}", std::process::id()),
    };
    let smoke = config.smoke;
    let n = |full: usize, quick: usize| if smoke { quick } else { full };

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Produced by `bash scripts/bench.sh`{} on {} (UTC), on `{}`, {} cores ({}), kernel {}, {}. \
         Absolute times drift between machines and runs; compare the ratios, which were measured in the same run. \
         Spread: criterion's 95 % confidence interval for the library; the interquartile range (p25–p75) elsewhere.\n",
        if smoke { " --smoke (a few iterations: these figures mean nothing)" } else { "" },
        shell("date -u '+%Y-%m-%d %H:%M'"),
        shell("hostname"),
        shell("nproc"),
        shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'"),
        shell("uname -r"),
        shell("rustc --version"),
    );

    let run = |section: &str| {
        let yes = config.only.as_deref().is_none_or(|only| only == section);
        if yes {
            eprintln!("== {section}");
        }
        yes
    };
    if run("library") {
        library(&mut md, config, &results);
    }
    if run("command") {
        whole_command(&mut md, &env, n(200, 3));
    }
    if run("cli-handover") {
        cli_handover(&mut md, &env, &results, n(15, 1));
    }
    if run("order") {
        waiting_order(&mut md, &env, n(10, 3), n(3, 1));
    }
    if run("handover") {
        handover(&mut md, &env, &results, n(200, 3));
    }
    if run("contention") {
        contention(
            &mut md,
            &env,
            &results,
            if smoke { &[1, 2] } else { &[1, 2, 8, 32, 128] },
            Duration::from_millis(n(2000, 200) as u64),
        );
    }
    if run("queries") {
        queries(
            &mut md,
            &env,
            &results,
            n(20, 2),
            if smoke { &[0, 100] } else { &[0, 1000, 10_000] },
        );
    }
    if run("memory") {
        memory(&mut md, &env, n(10, 2));
    }

    let path = config.out.join("BENCHMARKS.md");
    std::fs::write(&path, md).expect("write BENCHMARKS.md");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("wrote {}", path.display());
}

/// Median and 95 % interval (ns) of one criterion benchmark.
fn criterion_estimate(dir: &Path, id: &str) -> Option<(f64, f64, f64)> {
    let text = std::fs::read_to_string(
        dir.join("acquire_release")
            .join(id)
            .join("new/estimates.json"),
    )
    .ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let m = &json["median"];
    Some((
        m["point_estimate"].as_f64()?,
        m["confidence_interval"]["lower_bound"].as_f64()?,
        m["confidence_interval"]["upper_bound"].as_f64()?,
    ))
}

fn library(md: &mut String, config: &Config, results: &Path) {
    let _ = writeln!(md, "## 1. Library: one uncontended acquire + release\n");
    let _ = writeln!(
        md,
        "`cargo bench -p abslock-bench --bench acquire` (criterion). Each iteration takes a free lock and releases it. \
         `raw_syscalls` is the floor for any abstract-socket lock: `socket`, `bind`, `listen`, `close`. \
         Target: abslock within 1.3× of it.\n"
    );
    let rows = [
        ("raw_syscalls", "raw socket+bind+listen+close (floor)"),
        (
            "abslock",
            "abslock `Lock::try_acquire` + drop (default: served by the process's one thread)",
        ),
        ("abslock_unserved", "abslock with `Lock::serving(false)`"),
        ("flock_open_close", "open + flock(LOCK_EX|LOCK_NB) + close"),
        (
            "abslock_file",
            "abslock `FileLock` (flock + inode re-check)",
        ),
        ("fd_lock", "fd-lock 4 (open + try_write)"),
        ("fslock", "fslock 0.2 (open + try_lock + unlock)"),
        ("single_instance", "single-instance 0.3"),
        ("pid_file", "PID file: O_EXCL create, write, close, unlink"),
    ];
    let Some(dir) = config
        .criterion
        .as_deref()
        .filter(|d| d.join("acquire_release").exists())
    else {
        let _ = writeln!(
            md,
            "_Not measured in this run (smoke mode runs each benchmark once, untimed)._\n"
        );
        return;
    };
    let floor = criterion_estimate(dir, "raw_syscalls").map(|e| e.0);
    let _ = writeln!(
        md,
        "| implementation | median | 95 % CI | × floor |\n|---|---:|---:|---:|"
    );
    let mut plot_rows = Vec::new();
    for (id, label) in rows {
        let Some((med, lo, hi)) = criterion_estimate(dir, id) else {
            continue;
        };
        let ratio = floor.map_or(f64::NAN, |f| med / f);
        let _ = writeln!(
            md,
            "| {label} | {} | {}–{} | {ratio:.2} |",
            fmt_us(med / 1000.0),
            fmt_us(lo / 1000.0),
            fmt_us(hi / 1000.0)
        );
        plot_rows.push((id.to_string(), med / 1000.0));
    }
    let _ = plot::bars(
        &results.join("library.svg"),
        "acquire + release, median (log scale)",
        "µs",
        &plot_rows,
    );
    let verdict = |id: &str| match (criterion_estimate(dir, id), floor) {
        (Some((m, ..)), Some(f)) => format!("{:.2}×", m / f),
        _ => "n/a".into(),
    };
    let default_ratio = match (criterion_estimate(dir, "abslock"), floor) {
        (Some((m, ..)), Some(f)) => m / f,
        _ => f64::NAN,
    };
    let _ = writeln!(
        md,
        "\n![library](bench/results/library.svg)\n\n\
         **Target (default ≤ 1.3× the floor): {}** ({}; `serving(false)`: {}). \
         The default guard is served by one thread per process, started with the first lock, not by a thread per guard; \
         a guard joins its `epoll` set only once it has been held for 1 ms, so a lock taken and released sooner costs the \
         four system calls, a mutex and a few allocations (the `Info` it would answer with).{}\n",
        if default_ratio <= 1.3 { "met" } else { "missed" },
        verdict("abslock"),
        verdict("abslock_unserved"),
        if default_ratio <= 1.3 { "" } else {
            " What is left above the floor is measured by the gap to `serving(false)`, which skips only the \
             registration with the serving thread."
        }
    );
}

/// The abslock binaries measured where start-up and memory count: the one
/// `cargo install` builds, and the static one the .deb ships, if built.
fn binaries(env: &Env) -> Vec<(&'static str, &Path)> {
    let mut bins = vec![("cargo install (glibc, dynamic)", env.abslock.as_path())];
    if let Some(s) = &env.abslock_static {
        bins.push(("static (musl, as in the .deb)", s.as_path()));
    }
    bins
}

fn whole_command(md: &mut String, env: &Env, pairs: usize) {
    let _ = writeln!(
        md,
        "## 2. Whole command: `abslock run -n NAME true` against `flock -n FILE true`\n\n\
         {pairs} paired runs per abslock build, alternating which goes first; time from spawn to exit. \
         `cargo install` builds abslock against glibc, dynamically linked; `scripts/build-static.sh` builds \
         the static binary the .deb ships (musl, static-pie). Same source, same options.\n\n\
         | command | abslock build | median | p25–p75 | flock median | ratio of medians | per-pair ratio (p25–p75) |\n\
         |---|---|---:|---:|---:|---:|---:|"
    );
    let mut verdicts = Vec::new();
    let mut startups = Vec::new();
    for (build, bin) in binaries(env) {
        let samples = measure::whole_command(env, bin, pairs);
        let a = summary(samples.iter().map(|s| s.0).collect());
        let f = summary(samples.iter().map(|s| s.1).collect());
        let r = summary(samples.iter().map(|s| s.0 / s.1).collect());
        let _ = writeln!(
            md,
            "| `abslock run -n NAME true` | {build} | {} | {}–{} | {} | **{:.2}** | {:.2} ({:.2}–{:.2}) |",
            fmt_us(a.median), fmt_us(a.p25), fmt_us(a.p75), fmt_us(f.median),
            a.median / f.median, r.median, r.p25, r.p75,
        );
        verdicts.push((build, a.median / f.median));
        let (sa, sf) = measure::startup(bin, pairs);
        startups.push((build, summary(sa), summary(sf), a.median - f.median));
    }
    let _ = writeln!(
        md,
        "\n| start-up only | abslock build | median | p25–p75 | `flock --version` median | difference | whole-command difference |\n\
         |---|---|---:|---:|---:|---:|---:|"
    );
    for (build, sa, sf, whole) in &startups {
        let _ = writeln!(
            md,
            "| `abslock --version` | {build} | {} | {}–{} | {} | {} | {} |",
            fmt_us(sa.median),
            fmt_us(sa.p25),
            fmt_us(sa.p75),
            fmt_us(sf.median),
            fmt_us(sa.median - sf.median),
            fmt_us(*whole),
        );
    }
    // Issue 22's targets: the static binary (the .deb's) at most flock's
    // time, the dynamic one cargo install builds at most 1.10x.
    let target = |build: &str| {
        if build.starts_with("static") {
            1.0
        } else {
            1.10
        }
    };
    let _ = writeln!(
        md,
        "\n**Targets (static ≤ 1.00, cargo install ≤ 1.10): {}.** {}\n",
        if verdicts.iter().all(|(b, r)| *r <= target(b)) { "met" } else { "not all met" },
        verdicts
            .iter()
            .map(|(build, r)| {
                let t = target(build);
                format!("{build}: {r:.2} (target {t:.2}, {})", if *r <= t { "met" } else { "missed" })
            })
            .collect::<Vec<_>>()
            .join("; ")
            + ". The cluster engines (etcd, PostgreSQL, TLS) are not in `abslock`: it execs \
               `abslock-cluster`, the same command with them, only for `--backend` (crates/abslock-cli/src/engines.rs), \
               which halved the binary (5.3 MB to 2.2 MB) and its start-up work. A cluster user pays one more exec \
               of a 6.6 MB program (etcd's gRPC stack, tonic and tokio, included) on every command with `--backend` (about 1 ms here, measured by hand on 2026-11-30: `status --backend` against a closed port took 2.8–3.1 ms through `abslock`, 1.8–2.2 ms run as `abslock-cluster` directly), and `run --backend` starts one more process, the deadline keeper (docs/cluster.md). \
               The command is started as `posix_spawn(3)` starts one, with `clone(CLONE_VM|CLONE_VFORK)` \
               (crates/abslock-cli/src/supervise/spawn.rs), plus the two steps posix_spawn cannot take (PR_SET_PDEATHSIG, \
               the lock descriptor kept across exec): before, a `fork` copied abslock's page tables and both \
               processes took copy-on-write faults, about 150 µs of each run. The glibc build also skips std's \
               runtime start (crates/abslock-cli/src/start.rs): its stack-overflow handler reads /proc/self/maps \
               and maps an alternate signal stack, about 90 µs; abslock keeps what it needs of that start \
               (descriptors 0–2 open, SIGPIPE ignored). And the glibc build links its unwinder from `libgcc_eh.a` \
               instead of loading `libgcc_s.so.1` (crates/abslock-cli/build.rs): that library's constructor runs \
               `cpuid`, which traps to the hypervisor in a virtual machine; `perf record` of 500 runs put it, with \
               the library's loading, at about 70 µs of each run here (1.12x to 1.07x by `perf stat -r 400`, \
               2026-11-30). What is left of the dynamic build's \
               difference is start-up (second table: `--version` does no locking; the dynamic loader maps glibc \
               and applies a 2 MB program's relocations) and abslock's own work: for a per-user NAME, \
               the runtime file that keeps other network namespaces out (created, locked, and removed at the \
               release once nobody else has it open), then the socket and a signalfd."
    );
}

fn cli_handover(md: &mut String, env: &Env, results: &Path, rounds: usize) {
    let _ = writeln!(md, "## Hand-over as users run it\n");
    let _ = writeln!(
        md,
        "A holder `MODE -- sleep 30` is SIGKILLed (for abslock, the `abslock run` process; the kernel then kills \
         its command), or its command `sh` exits; a waiter started 300 ms earlier, `MODE -w 10 -- sh -c 'date +%s%N'`, \
         stamps the time it runs. flock(1) is measured the same way, with a `flock -F` holder and a `flock -w 10` \
         waiter; every row includes the start of `sh`. Medians of {rounds}, in one run, the modes taking turns \
         round by round; the ratio is to flock(1)'s median for the same ending.\n\n\
         | mode | after SIGKILL | ratio | after exit | ratio |\n|---|---:|---:|---:|---:|"
    );
    // Interleaved, one hand-over of each mode per round, so that a slow
    // spell of the machine falls on every mode alike.
    let mut samples = vec![(Vec::new(), Vec::new()); measure::CliMode::ALL.len()];
    for _ in 0..rounds {
        for (i, mode) in measure::CliMode::ALL.into_iter().enumerate() {
            samples[i]
                .0
                .extend(measure::cli_handover(env, mode, Ending::Sigkill, 1));
            samples[i]
                .1
                .extend(measure::cli_handover(env, mode, Ending::Exit, 1));
        }
    }
    let medians: Vec<_> = measure::CliMode::ALL
        .into_iter()
        .zip(samples)
        .map(|(mode, (kill, exit))| (mode, summary(kill).median, summary(exit).median))
        .collect();
    let (flock_kill, flock_exit) = (medians[0].1, medians[0].2);
    let mut worst: f64 = 0.0;
    let mut plot_rows = Vec::new();
    for (mode, kill, exit) in &medians {
        let (rk, re) = (kill / flock_kill, exit / flock_exit);
        if *mode != measure::CliMode::Flock {
            worst = worst.max(rk).max(re);
        }
        let _ = writeln!(
            md,
            "| {} | {} | {rk:.2}x | {} | {re:.2}x |",
            mode.label(),
            fmt_us(*kill),
            fmt_us(*exit)
        );
        plot_rows.push((format!("{} / SIGKILL", mode.label()), *kill));
        plot_rows.push((format!("{} / exit", mode.label()), *exit));
    }
    let _ = plot::bars(
        &results.join("cli-handover.svg"),
        "hand-over on the command line, median (log scale)",
        "µs",
        &plot_rows,
    );
    let _ = writeln!(
        md,
        "\n![command-line hand-over](bench/results/cli-handover.svg)\n\n**Target (every abslock mode within 1.5x \
         flock(1), after SIGKILL and after exit): {}** (worst ratio {worst:.2}x). Every lock-file wait sleeps in the \
         kernel: the command's, with or without `-w`, in `flock(2)` itself (a timer interrupts it at the deadline, as \
         for `flock -w`); the library's timed wait in `poll(2)` on an inotify watch of the file, which the kernel wakes \
         when a holder's last descriptor of the file closes (the close that releases its lock).\n",
        if worst <= 1.5 { "met" } else { "missed" }
    );
}

/// Pairs of waiters served out of arrival order.
fn inversions(order: &[usize]) -> usize {
    (0..order.len())
        .flat_map(|i| (i + 1..order.len()).map(move |j| (i, j)))
        .filter(|&(i, j)| order[i] > order[j])
        .count()
}

fn waiting_order(md: &mut String, env: &Env, waiters: usize, runs: usize) {
    let apart = Duration::from_millis(80);
    let pairs = waiters * (waiters - 1) / 2;
    let _ = writeln!(
        md,
        "## Waiting order
"
    );
    let _ = writeln!(
        md,
        "{waiters} waiters (`MODE -w 60 -- sh -c 'echo I >> log; sleep 0.02'`) start {} ms apart while a holder holds \
         the lock; the holder then exits, and the log shows the order in which they ran. An inversion is a pair of \
         waiters served against their arrival order ({pairs} pairs; FIFO gives 0, a random order about {}). \
         {runs} runs per mode.\n\n| mode | inversions per run | an order seen |\n|---|---|---|",
        apart.as_millis(),
        pairs / 2
    );
    for mode in measure::CliMode::ALL {
        let mut counts = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..runs {
            let order = measure::waiting_order(env, mode, waiters, apart);
            counts.push(if order.len() == waiters {
                inversions(&order).to_string()
            } else {
                format!("{} of {waiters} ran", order.len())
            });
            seen = order;
        }
        let seen: Vec<String> = seen.iter().map(usize::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            mode.label(),
            counts.join(", "),
            seen.join(" ")
        );
    }
    let _ = writeln!(
        md,
        "\nA lock file queues its waiters: `flock(2)` puts a request that conflicts with one already blocked behind it \
         (`locks_insert_block`), so each release wakes the first in line. `abslock run -w` waits there (a timer ends \
         the wait, as for `flock -w`), on a lock file and on the runtime file of a per-user NAME. A raw `@name` queues its waiters \
         itself (crates/abslock/src/queue.rs): each waiter binds a ticket, a socket name of its own numbered by the \
         time it came, and waits for the ticket before it to go; only the first in line waits on the name, so each \
         release wakes one waiter.\n"
    );
}

fn handover(md: &mut String, env: &Env, results: &Path, rounds: usize) {
    let _ = writeln!(md, "## 3. Hand-over latency\n");
    let _ = writeln!(
        md,
        "From the holder's end (SIGKILL sent, or told to exit normally) to the moment the waiting process holds the lock, \
         on CLOCK_MONOTONIC across processes. {rounds} hand-overs per row; each waiter is a separate process already waiting.\n\n\
         | method | holder ends by | median | p25–p75 | p99 | max |\n|---|---|---:|---:|---:|---:|"
    );
    let mut plot_rows = Vec::new();
    let mut medians: Vec<(Method, Ending, f64)> = Vec::new();
    // (label, holder's method, waiter's method); the holder's method names
    // the row below.
    let rows = [
        (Method::Abslock.label(), Method::Abslock, Method::Abslock),
        (
            "abslock, holder serving(false), waiter default",
            Method::AbslockUnserved,
            Method::Abslock,
        ),
        (
            Method::RawSocket.label(),
            Method::RawSocket,
            Method::RawSocket,
        ),
        (Method::Flock.label(), Method::Flock, Method::Flock),
        (Method::PidFile.label(), Method::PidFile, Method::PidFile),
    ];
    for (label, method, waiting) in rows {
        for ending in [Ending::Sigkill, Ending::Exit] {
            let s: Summary = summary(measure::handover(env, (method, waiting), ending, rounds));
            medians.push((method, ending, s.median));
            let how = if ending == Ending::Sigkill {
                "SIGKILL"
            } else {
                "exit"
            };
            let _ = writeln!(
                md,
                "| {label} | {how} | {} | {}–{} | {} | {} |",
                fmt_us(s.median),
                fmt_us(s.p25),
                fmt_us(s.p75),
                fmt_us(s.p99),
                fmt_us(s.max)
            );
            plot_rows.push((format!("{} / {how}", method.arg()), s.median));
        }
    }
    let median_of = |m: Method, e: Ending| {
        medians
            .iter()
            .find(|(mm, ee, _)| *mm == m && *ee == e)
            .map_or(f64::NAN, |x| x.2)
    };
    let verdicts: Vec<(bool, String)> = [Ending::Sigkill, Ending::Exit]
        .into_iter()
        .map(|e| {
            let (a, f) = (median_of(Method::Abslock, e), median_of(Method::Flock, e));
            let how = if e == Ending::Sigkill {
                "after SIGKILL"
            } else {
                "after exit"
            };
            (
                a <= f,
                format!("{how}: abslock {} vs flock(2) {}", fmt_us(a), fmt_us(f)),
            )
        })
        .collect();
    let all_met = verdicts.iter().all(|v| v.0);
    let _ = plot::bars(
        &results.join("handover.svg"),
        "hand-over latency, median (log scale)",
        "µs",
        &plot_rows,
    );
    let _ = writeln!(
        md,
        "\n![hand-over](bench/results/handover.svg)\n\n**Target (abslock median no slower than flock(2)'s, per ending): {}** ({}). \
         What limits it, by measurement: the mechanism itself. The raw row is a socket name lock with no abslock code \
         (bind and listen; a waiter connects, sleeps in poll(2) until the hang-up, binds): {} after SIGKILL and {} \
         after exit, against flock(2)'s {} and {}. A flock(2) waiter sleeps in the kernel and is handed the lock there; \
         a socket waiter is woken by the release of the holder's socket and must come back to bind. abslock whose \
         holder serves no requests: {} and {}; with the default holder's serving thread: {} and {} (compare the \
         p25–p75 columns: after exit the spreads of these rows overlap widely). After SIGKILL the kernel must wake \
         and stop every thread of the holder before it closes its descriptors, which is what the serving thread \
         costs there. That is the price of answering `info`, messages and stop requests without the \
         application's help; the waiter's own serving setting makes no difference (it starts its thread while it \
         waits). `abslock run` serves its lock from its one supervising thread, so a command run under it is a \
         holder without that extra thread. The PID-file loop can only notice on its next 100 ms tick, and after \
         SIGKILL only because it also checks `kill(pid, 0)`.\n",
        if all_met { "met" } else { "missed" },
        verdicts.iter().map(|v| v.1.clone()).collect::<Vec<_>>().join("; "),
        fmt_us(median_of(Method::RawSocket, Ending::Sigkill)),
        fmt_us(median_of(Method::RawSocket, Ending::Exit)),
        fmt_us(median_of(Method::Flock, Ending::Sigkill)),
        fmt_us(median_of(Method::Flock, Ending::Exit)),
        fmt_us(median_of(Method::AbslockUnserved, Ending::Sigkill)),
        fmt_us(median_of(Method::AbslockUnserved, Ending::Exit)),
        fmt_us(median_of(Method::Abslock, Ending::Sigkill)),
        fmt_us(median_of(Method::Abslock, Ending::Exit)),
    );
}

fn contention(md: &mut String, env: &Env, results: &Path, counts: &[usize], duration: Duration) {
    let _ = writeln!(md, "## 4. Contention scaling\n");
    let _ = writeln!(
        md,
        "N processes loop on one lock (take, a few µs of work, release) for {:.1} s. Throughput counts hand-overs per second; \
         fairness is the longest single wait over the median wait.\n\n\
         | waiters | abslock hand-overs/s | max/median wait | abslock `serving(false)` hand-overs/s | max/median wait | flock hand-overs/s | max/median wait |\n|---:|---:|---:|---:|---:|---:|---:|",
        duration.as_secs_f64()
    );
    let methods = [Method::Abslock, Method::AbslockUnserved, Method::Flock];
    let mut series: Vec<(String, Vec<(f64, f64)>)> = methods
        .iter()
        .map(|m| (m.label().to_string(), Vec::new()))
        .collect();
    for &n in counts {
        let mut cells = Vec::new();
        for (i, method) in methods.into_iter().enumerate() {
            let (rate, waits) = measure::contention(env, method, n, duration);
            let s = summary(waits);
            series[i].1.push((n as f64, rate.max(1e-3)));
            cells.push(format!("{rate:.0} | {:.0}", s.max / s.median.max(1e-3)));
        }
        let _ = writeln!(md, "| {n} | {} |", cells.join(" | "));
    }
    let _ = plot::lines(
        &results.join("contention.svg"),
        "hand-overs per second by number of waiters",
        "waiters",
        "hand-overs/s",
        &series,
    );
    let _ = writeln!(
        md,
        "\n![contention](bench/results/contention.svg)\n\n\
         With one process, every acquisition is a re-acquisition by the same process (no hand-over to wait for). \
         The default guard and `serving(false)` differ only in what the process's one serving thread does: \
         a hold shorter than 1 ms is never registered with it (section 1).\n\n\
         **One waiter woken per release.** A waiter on a socket name takes a ticket (crates/abslock/src/queue.rs) and waits \
         for the waiter before it, so a release wakes only the first in line, which binds; the others sleep on. Without the \
         queue, every waiter's connection was hung up at once (rule 6 of `docs/semantics.md`), all N woke and raced to bind, \
         and the longest wait at 128 waiters was about 300 000 times the median; with it, about 35 000. A process that \
         releases and asks again at once can still win before the woken waiter binds, as with flock(2), hence the large \
         max/median that remains. \
         A lock used as a busy inter-process mutex should use `Lock::serving(false)`.\n"
    );
}

fn queries(md: &mut String, env: &Env, results: &Path, runs: usize, counts: &[usize]) {
    let q = measure::queries(env, runs, counts);
    let s1 = summary(q.status_socket);
    let s2 = summary(q.status_procfs);
    let _ = writeln!(md, "## 5. Query cost\n");
    let _ = writeln!(
        md,
        "Whole `abslock` invocations, {runs} runs each.\n\n| query | median | p25–p75 |\n|---|---:|---:|\n\
         | `abslock status NAME`, holder listening (SO_PEERCRED + its `info` answer) | {} | {}–{} |\n\
         | `abslock status @RAW`, bound but not listening (found through /proc) | {} | {}–{} |",
        fmt_us(s1.median), fmt_us(s1.p25), fmt_us(s1.p75),
        fmt_us(s2.median), fmt_us(s2.p25), fmt_us(s2.p75)
    );
    let mut pts = Vec::new();
    for (count, samples) in q.list {
        let s = summary(samples);
        let _ = writeln!(
            md,
            "| `abslock list` with {count} extra abstract sockets bound | {} | {}–{} |",
            fmt_us(s.median),
            fmt_us(s.p25),
            fmt_us(s.p75)
        );
        pts.push((count as f64, s.median / 1000.0));
    }
    let _ = plot::lines(
        &results.join("list.svg"),
        "abslock list: time by abstract sockets bound",
        "sockets bound",
        "ms",
        &[("abslock list".into(), pts)],
    );
    let _ = writeln!(
        md,
        "\n![list](bench/results/list.svg)\n\n`list` reads /proc/net/unix once (linear in the sockets on the system) and then \
         `/proc/*/fd` once for the inodes it shows; the extra sockets here are not abslock locks, so the cost that grows is the \
         parse of /proc/net/unix.\n"
    );
}

fn memory(md: &mut String, env: &Env, runs: usize) {
    let _ = writeln!(md, "## 6. Memory\n");
    let _ = writeln!(
        md,
        "Peak RSS (VmHWM) of the locking process while it supervises `sleep 0.3`, sampled from /proc/PID/status, \
         {runs} runs each, and the largest RssAnon seen: the private memory (heap, stack, written data). The rest \
         of RSS is file-backed: the program's and its libraries' pages, mapped from the page cache and shared \
         by every process that runs them (the kernel maps up to 64 KiB around each page a program touches).\n\n\
         | command | abslock build | median peak RSS | max | of it private (RssAnon) | flock's peak RSS | flock's private | ratio of peaks |\n\
         |---|---|---:|---:|---:|---:|---:|---:|"
    );
    let mut verdicts = Vec::new();
    for (build, bin) in binaries(env) {
        let (a, f) = measure::memory(env, bin, runs);
        let (peak, anon) = (
            summary(a.iter().map(|x| x.0).collect()),
            summary(a.iter().map(|x| x.1).collect()),
        );
        let (fpeak, fanon) = (
            summary(f.iter().map(|x| x.0).collect()),
            summary(f.iter().map(|x| x.1).collect()),
        );
        let _ = writeln!(
            md,
            "| `abslock run NAME -- sleep 0.3` | {build} | {:.0} KiB | {:.0} KiB | {:.0} KiB | {:.0} KiB | {:.0} KiB | **{:.2}** |",
            peak.median, peak.max, anon.median, fpeak.median, fanon.median, peak.median / fpeak.median
        );
        verdicts.push((
            build,
            peak.median / fpeak.median,
            anon.median - fanon.median,
            peak.median - fpeak.median,
        ));
    }
    let _ = writeln!(
        md,
        "\n**Target (peak ≤ 1.25× flock's): {}.** {}. abslock supervises in one thread, as flock waits for its \
         command in one; the private memory of the two is within {} KiB of each other. What abslock carries more is \
         file-backed: its code (the binary is {} KiB against flock's {} KiB; the cluster engines are in \
         `abslock-cluster`, which runs only for `--backend`), of which the pages that run, clap's parser among \
         them, are mapped; the static build adds no libc.so and no dynamic loader, which is most of its \
         advantage.\n",
        if verdicts.iter().any(|v| v.1 <= 1.25) { "met" } else { "missed" },
        verdicts
            .iter()
            .map(|(b, r, _, extra)| format!("{b}: {r:.2} ({extra:.0} KiB more)"))
            .collect::<Vec<_>>()
            .join("; "),
        verdicts.iter().map(|v| v.2).fold(0.0f64, f64::max).round(),
        file_kib(&env.abslock),
        which("flock").map_or(0, |p| file_kib(&p)),
    );
}

fn file_kib(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() / 1024)
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}
