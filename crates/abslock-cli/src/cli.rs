//! The command line, defined once for parsing, help, completions and the man
//! page.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Single-instance locks on Linux abstract socket names: like flock(1), but
/// it can tell who holds a lock, wait for it, and stop the holder safely.
///
/// NAME is a per-user lock name (`--system` for one shared by all users),
/// `@ADDRESS` for an exact abstract socket address as `ss -xa` shows it, or
/// `file:PATH` for a flock(2) lock file. `--file PATH` with a socket NAME
/// takes both (combined mode: the file decides, the socket adds discovery
/// and messages).
///
/// A name is freed when the last reference to its socket is dropped, which
/// for a holder that exits or is SIGKILLed is before its parent's waitpid
/// returns; late cases (a core dump being written, a tracer stopping the
/// exit) are in docs/semantics.md, and `abslock status` says when a
/// holder is in one.
#[derive(Debug, Parser)]
#[command(
    name = "abslock",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = after_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The whole command tree with every subcommand's arguments defined, for
/// completions and man pages (parsing defines only the one it parses);
/// with clap's `help` subcommand or without it (the man pages: there is no
/// abslock-help(1)).
pub fn full_command(help_subcommand: bool) -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(!help_subcommand);
    cmd.build();
    cmd
}

/// The exit codes: `--help` shows them, the man pages have them as EXIT
/// STATUS.
pub const EXIT_STATUS: [(&str, &str); 15] = [
    ("0", "success (run: the command's own status)"),
    ("1", "the lock is held (conflict or timeout; run -E changes it), or status: free"),
    ("2", "kill: still held when the wait ran out"),
    ("3", "held by a user the lock does not trust (squatted name): reported, never waited for"),
    ("5", "run --backend: the cluster lock was lost while the command ran, or could not be confirmed at the release as held to the end"),
    ("64", "usage error (bad option, name, signal or timeout)"),
    ("66", "a lock file cannot be opened (as flock(1))"),
    ("69", "the command could not be executed; send: the lock is not held, or its holder takes no messages"),
    ("71", "operating-system error"),
    ("73", "a PID file cannot be written; a lock file on a read-only or full file system (as flock(1))"),
    ("75", "send: the holder is shutting down (retry) or did not answer in time"),
    ("76", "send: the holder's answer broke the protocol"),
    ("77", "not permitted (signalling another user's process; refused by the holder; a lock or PID file path another user could redirect or take over; a PID-file path holding something abslock will not replace)"),
    ("128+N", "run: the command was killed by signal N"),
    ("other", "send: the status the holder replied with"),
];

/// What `--help` shows after the options: the exit codes, and where the
/// man pages are.
fn after_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, what) in EXIT_STATUS {
        text.push_str(&format!("  {code:<6} {what}\n"));
    }
    text.push_str(
        "\nMan pages: abslock man SUBCOMMAND | man -l -, or install them all with \
         abslock man --install ~/.local/share/man (the .deb installs them).",
    );
    text
}

/// The subcommands. Each one's arguments are defined only when it is
/// the one parsed (`defer`): building the whole tree was most of
/// abslock's start-up (about 0.17 ms of 0.27 ms spent in clap, measured).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run a command while holding the lock.
    Run(RunArgs),
    /// Show who holds a lock (exit 0 if held, 1 if free, 3 if squatted).
    Status(StatusArgs),
    /// Wait until a lock is free (exit 0), or time out (exit 1).
    Wait(WaitArgs),
    /// Signal the holder of a lock through a pidfd and wait for the release.
    Kill(KillArgs),
    /// Hold a lock for the rest of the calling script.
    ///
    /// `--fd N` locks the file the script opened on descriptor N, as
    /// flock's fd form does (`exec 9>/run/job/lock; abslock lock -n --fd 9`);
    /// NAME is held by a keeper process until the script exits, however it
    /// ends.
    Lock(LockArgs),
    /// Release the lock that `abslock lock --fd N` took.
    Unlock(UnlockArgs),
    /// Exit 0 if the caller or an ancestor holds the lock, 1 if not.
    ///
    /// The test of the self-lock idiom:
    /// `abslock held job || exec abslock run -n job -- "$0" "$@"`.
    Held(HeldArgs),
    /// Hand arguments to the running instance and print its reply.
    Send(SendArgs),
    /// List the locks held in this network namespace.
    ///
    /// Also removes the runtime files of your per-user NAMEs that no
    /// process holds: those a holder killed by SIGKILL or a crash could not
    /// remove (a held one is never touched).
    List(ListArgs),
    /// Check, on this kernel, the rules abslock relies on.
    Doctor(DoctorArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff) of abslock or of one subcommand.
    Man(ManArgs),
}

// Which lock: the name and its scope, and whose holding is expected.
// (Flattened into subcommands: a doc comment here would become their
// about text, with `defer`.)
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Use the system-wide scope instead of the per-user one.
    #[arg(long)]
    pub system: bool,
    /// Also trust holders running as UID (repeatable); by default only
    /// your own uid and root are trusted, others count as squatters.
    #[arg(long = "trust-uid", value_name = "UID")]
    pub trust_uid: Vec<u32>,
    /// Trust holders of any uid (a lock that several users take in turn).
    #[arg(long = "trust-any", conflicts_with = "trust_uid")]
    pub trust_any: bool,
    /// Also lock this file with flock(2), and let the file decide
    /// (combined mode): a squatter on the socket name cannot deny the
    /// lock. It must be in a directory only the lock's users can write to
    /// (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise
    /// abslock refuses it (exit 77).
    #[arg(long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Lock across hosts on a cluster engine instead: etcd://HOST:PORT or
    /// etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets
    /// the lease, default 10; etcds://... or https://HOST:PORT for TLS with
    /// ?cacert=FILE&cert=FILE&key=FILE, the system's trust store without
    /// cacert; etcdctl's ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq's
    /// PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see
    /// docs/cluster.md. NAME is then the lock's name on the engine; the
    /// holder is named by host (uname -n, or $ABSLOCK_HOST) and pid.
    /// file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH
    /// is a directory).
    #[arg(long = "backend", value_name = "URL", conflicts_with_all = ["file", "system"])]
    pub backend: Option<String>,
    /// The lock name, @ADDRESS for a raw abstract address, or file:PATH
    /// (or a path starting with /, ./ or ../, as flock(1) takes it) for a
    /// lock file alone.
    #[arg(value_name = "NAME")]
    pub name: String,
}

// How to take a lock, as flock(1) spells it: shared by `run` and `lock`.
// (Flattened: no doc comment, as for NameArgs.)
#[derive(Debug, Args)]
pub struct AcquireArgs {
    /// Fail at once if the lock is held (same as -w 0).
    #[arg(short = 'n', long = "nonblock", visible_alias = "nb")]
    pub nonblock: bool,
    /// Give up after SECS seconds (fractions allowed, or units: 5m,
    /// 1h30m); 0 is -n.
    #[arg(short = 'w', long = "timeout", visible_alias = "wait", value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
    /// Exit status when the lock is held or the wait times out.
    #[arg(
        short = 'E',
        long = "conflict-exit-code",
        value_name = "N",
        default_value_t = 1
    )]
    pub conflict_exit_code: u8,
    /// Take a shared lock (lock files only: any number of shared holders,
    /// none while an exclusive one holds it), as flock -s.
    #[arg(short = 's', long, visible_alias = "read")]
    pub shared: bool,
    /// Take an exclusive lock (the default), as flock -x.
    #[arg(
        short = 'x',
        short_alias = 'e',
        long,
        visible_alias = "write",
        conflicts_with = "shared"
    )]
    pub exclusive: bool,
}

// How much abslock says, as flock and most tools spell it. (Flattened:
// no doc comment, as for NameArgs.)
#[derive(Debug, Args)]
pub struct Verbosity {
    /// Say who held the lock, how long it waited, what it acquired
    /// (repeatable). A conflict with -n is silent without it, as with
    /// flock(1).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but errors: no warnings, no notes.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
}

// The arguments of `abslock run`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub acquire: AcquireArgs,
    /// Exec COMMAND in place of abslock: its pid is the holder's pid
    /// (flock's -F). Nobody then drains the backlog of the lock socket.
    #[arg(short = 'F', long, visible_alias = "no-fork")]
    pub exec: bool,
    /// Run COMMAND_STRING with `sh -c`, as flock -c.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "COMMAND_STRING",
        conflicts_with = "command"
    )]
    pub command_string: Option<OsString>,
    /// Do not pass the lock to COMMAND: if abslock dies, the lock is
    /// released while COMMAND is still being killed, and processes COMMAND
    /// started keep running without it.
    #[arg(short = 'o', long = "close")]
    pub close: bool,
    /// Replace the running holder: ask it to stop (or SIGTERM it through
    /// its pidfd if it takes no requests), wait for the release (-w,
    /// default 10 s), SIGKILL whatever still keeps the lock, then run.
    #[arg(long, conflicts_with = "nonblock")]
    pub replace: bool,
    /// Write the command's pid to PATH while it runs, for tools that read
    /// PID files (atomically: a temporary file renamed into place);
    /// removed when the command exits. An existing PID file is ignored:
    /// the lock decides.
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    #[command(flatten)]
    pub talk: Verbosity,
    #[command(flatten)]
    pub lock: NameArgs,
    /// The command and its arguments.
    #[arg(
        value_name = "COMMAND",
        required_unless_present = "command_string",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

// The arguments of `abslock lock`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub acquire: AcquireArgs,
    #[command(flatten)]
    pub talk: Verbosity,
    /// Lock the file open on this descriptor of the calling shell
    /// (`exec 9>/run/job/lock`), with flock(2): the lock lasts as long as
    /// that open file, in the shell and every process that inherited it.
    #[arg(
        long,
        value_name = "N",
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub fd: Option<i32>,
    #[command(flatten)]
    pub lock: Option<NameArgs>,
}

// The arguments of `abslock unlock`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The descriptor `abslock lock --fd` locked.
    #[arg(long, value_name = "N")]
    pub fd: i32,
}

// The arguments of `abslock held`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct HeldArgs {
    #[command(flatten)]
    pub lock: NameArgs,
}

// The arguments of `abslock status`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also say how a waiter learns of the release: woken by the kernel,
    /// or polling (an fcntl lock holder, a name bound without listen).
    #[arg(short, long)]
    pub verbose: bool,
    /// Also say whether this PID file is current or stale (the process is
    /// gone, or its pid now belongs to a process that does not hold the
    /// lock).
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    #[command(flatten)]
    pub lock: NameArgs,
}

// The arguments of `abslock wait`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Give up after SECS seconds.
    #[arg(short = 'w', long = "timeout", value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub lock: NameArgs,
}

// The arguments of `abslock kill`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal: a name (TERM, SIGTERM) or a number.
    #[arg(
        short = 's',
        long = "signal",
        value_name = "SIGNAL",
        default_value = "TERM"
    )]
    pub signal: String,
    /// How long to wait for the release, in seconds.
    #[arg(short = 'w', long = "timeout", value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true, default_value = "10")]
    pub timeout: Duration,
    /// Send SIGKILL to every process keeping the lock if it is still held
    /// SECS seconds after the first signal.
    #[arg(long = "kill-after", value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub kill_after: Option<Duration>,
    #[command(flatten)]
    pub lock: NameArgs,
}

// The arguments of `abslock send`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct SendArgs {
    /// How long to wait for the reply, in seconds.
    #[arg(short = 'w', long = "timeout", value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true, default_value = "5")]
    pub timeout: Duration,
    /// Opaque data to send along (the holder decides what it means).
    #[arg(long, value_name = "TEXT")]
    pub payload: Option<OsString>,
    #[command(flatten)]
    pub lock: NameArgs,
    /// The argv to hand over, program name first, as a second instance
    /// of the program would send it.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<OsString>,
}

// The arguments of `abslock list`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Every bound abstract socket name, not only abslock's.
    #[arg(long)]
    pub all: bool,
}

// The arguments of `abslock doctor`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

// The arguments of `abslock man`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (abslock-SUBCOMMAND(1)).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "install")]
    pub subcommand: Option<String>,
    /// Write every page to DIR/man1/ instead (for `cargo install`:
    /// `abslock man --install ~/.local/share/man`, then `man abslock-run`).
    #[arg(long, value_name = "DIR")]
    pub install: Option<PathBuf>,
}

// The arguments of `abslock completions`. (A doc comment here would become the
// subcommand's about text, over the variant's, with `defer`.)
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells with completion scripts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// The longest timeout accepted: about 31 years, far past any wait that
/// makes sense, and far from overflowing the clock.
const MAX_SECS: f64 = 1e9;

/// A duration: seconds as a non-negative decimal number (`1.5`), or with
/// units as `humantime` reads them (`500ms`, `5m`, `1h30m`, `2days`); at
/// most [`MAX_SECS`].
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = match text.trim().parse() {
        Ok(secs) => secs,
        Err(_) => {
            let duration = humantime::parse_duration(text.trim()).map_err(|e| {
                format!("'{text}' is not a duration ({e}); write seconds or e.g. 5m, 1h30m")
            })?;
            units_descend(text)?;
            duration.as_secs_f64()
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{text}': seconds must be a finite number >= 0"));
    }
    if secs > MAX_SECS {
        return Err(format!(
            "'{text}' seconds is too long (at most {MAX_SECS:e})"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{text}' seconds is too long"))
}

/// humantime adds up repeated or unordered units (`5m5m` is 10 minutes):
/// most likely a typo, so each unit must be smaller than the one before.
fn units_descend(text: &str) -> Result<(), String> {
    let mut previous: Option<Duration> = None;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let after = &rest[digits..];
        let letters = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let unit = humantime::parse_duration(&format!("1{}", &after[..letters]))
            .map_err(|e| format!("'{text}' is not a duration ({e})"))?;
        if previous.is_some_and(|p| unit >= p) {
            return Err(format!(
                "'{text}': each unit must be smaller than the one before (e.g. 1h30m)"
            ));
        }
        previous = Some(unit);
        rest = after[letters..].trim_start();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_parse_strictly() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_secs("0"), Ok(Duration::ZERO));
        assert_eq!(parse_secs("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_secs("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_secs("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_secs("1h 30m 5s"), Ok(Duration::from_secs(5405)));
        for bad in ["5m5m", "30m1h", "1s1s", "2min5m"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        for bad in ["-1", "x", "", "nan", "inf", "1e300", "1e19", "1000000001"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }
}
