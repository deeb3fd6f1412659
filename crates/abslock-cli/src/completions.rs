//! `abslock completions` and `abslock man`, generated from the same clap
//! definitions that parse the command line.

use crate::cli::{full_command, CompletionsArgs, Shell};
use crate::exit::{self, Failure};

/// Prints the completion script for a shell.
pub fn completions(args: &CompletionsArgs) -> Result<u8, Failure> {
    crate::out::write(&completion_script(args.shell));
    Ok(exit::OK)
}

/// The completion script for `shell`.
fn completion_script(shell: Shell) -> Vec<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut full_command(true), "abslock", &mut script);
    script
}

/// Prints the man page of `abslock`, or of one subcommand.
pub fn man(subcommand: Option<&str>) -> Result<u8, Failure> {
    crate::out::write(&render_man(subcommand)?);
    Ok(exit::OK)
}

/// Renders `abslock(1)`, or `abslock-SUBCOMMAND(1)`.
pub fn render_man(subcommand: Option<&str>) -> Result<Vec<u8>, Failure> {
    let cmd = full_command(false);
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).ok_or_else(|| {
                Failure::new(
                    exit::USAGE,
                    format!("no subcommand '{name}'; see 'abslock --help'"),
                )
            })?;
            sub.clone()
                .name(format!("abslock-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let has_args = page.get_arguments().any(|a| !a.is_hide_set());
    let has_subcommands = page.get_subcommands().next().is_some();
    let man = clap_mangen::Man::new(page);
    let mut out = Vec::new();
    let rendered = (|| -> std::io::Result<()> {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        if has_args {
            man.render_options_section(&mut out)?;
        }
        if has_subcommands {
            man.render_subcommands_section(&mut out)?;
        }
        man.render_extra_section(&mut out)?;
        out.extend_from_slice(environment().as_bytes());
        out.extend_from_slice(examples(subcommand).as_bytes());
        man.render_version_section(&mut out)
    })();
    rendered.map_err(|e| Failure::new(exit::OSERR, format!("rendering the man page: {e}")))?;
    Ok(out)
}

/// The environment variables abslock reads or sets, as a roff section.
fn environment() -> String {
    let vars = [
        ("ABSLOCK_FD", "Set by \\fBabslock run\\fR (and \\fB\\-F\\fR) for COMMAND: the number of the inherited descriptor that holds the lock. The lock lasts while any process keeps it open."),
        ("ABSLOCK_FENCING_TOKEN", "Set by \\fBabslock run \\-\\-backend etcd://...\\fR for COMMAND: the lock's fencing token, which grows with every new holder; pass it to the resources the command writes so that they can refuse a stale holder."),
        ("ABSLOCK_HOST", "The host name a cluster lock's holder is shown by (default: \\fBuname \\-n\\fR)."),
        ("ETCDCTL_ENDPOINTS, ETCDCTL_USER, ETCDCTL_PASSWORD", "Read for \\fB\\-\\-backend etcd://\\fR as etcdctl reads them: the endpoints when the URL names none, the user (\\fBUSER\\fR or \\fBUSER:PASSWORD\\fR) and password when the URL has none."),
        ("PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE", "Read for \\fB\\-\\-backend postgres://\\fR as libpq reads them, for what the URL leaves out; the password also from \\fB~/.pgpass\\fR (only if no one else can read it). A password is never printed."),
        ("XDG_RUNTIME_DIR", "Where a per-user NAME also takes its lock file (\\fB$XDG_RUNTIME_DIR/abslock/\\fR; else \\fB/run/user/UID/abslock/\\fR, \\fB/run/abslock/\\fR for root), so that a second instance in another network namespace is refused too."),
        ("NOTIFY_SOCKET, LISTEN_FDS, LISTEN_PID", "systemd's: in the default (supervising) mode \\fBabslock run\\fR passes socket activation on to COMMAND with \\fBLISTEN_PID\\fR set to COMMAND's pid, and relays COMMAND's \\fBsd_notify\\fR messages (READY=1, STATUS=...) to systemd as the main process's."),
    ];
    format!(".SH ENVIRONMENT\n{}", tagged(vars))
}

/// roff tagged paragraphs: each tag in bold, its text below.
fn tagged<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    items
        .into_iter()
        .map(|(tag, text)| format!(".TP\n\\fB{tag}\\fR\n{text}\n"))
        .collect()
}

/// Examples, as a roff section: all of them on abslock(1), the
/// subcommand's own on its page.
fn examples(subcommand: Option<&str>) -> String {
    let all = [
        (
            "run",
            "abslock run \\-n backup \\-\\- /usr/local/bin/backup",
            "Run the backup unless one is running already (exit 1, silently, as for cron).",
        ),
        (
            "run",
            "abslock run \\-w 5m \\-E 75 /run/job/lock \\-\\- job",
            "Wait up to five minutes for a lock file, as flock(1) would; exit 75 on timeout.",
        ),
        (
            "run",
            "abslock run \\-\\-replace \\-\\-file /run/mydaemon/lock mydaemon \\-\\- mydaemon",
            "Upgrade: ask the running daemon to stop, take over its lock, start the new one.",
        ),
        (
            "lock",
            "exec 9>/run/job/lock; abslock lock \\-n \\-\\-fd 9 || exit 1",
            "Hold a lock for the rest of a script, flock's fd form.",
        ),
        (
            "held",
            "abslock held job || exec abslock run \\-n job \\-\\- \"$0\" \"$@\"",
            "A script that locks itself, safely when scripts nest.",
        ),
        (
            "status",
            "abslock status backup",
            "Who holds it: pid, user, command, since when, every process keeping it.",
        ),
        (
            "kill",
            "abslock kill \\-\\-kill\\-after 10 backup",
            "SIGTERM the holder through a pidfd, SIGKILL whatever keeps the lock 10 s later.",
        ),
        (
            "wait",
            "abslock wait backup && echo done",
            "Sleep until the lock is free, woken by the kernel.",
        ),
        (
            "list",
            "abslock list \\-\\-all",
            "Every abstract socket name in this network namespace and who holds it.",
        ),
    ];
    let roff = tagged(
        all.into_iter()
            .filter(|(sub, _, _)| subcommand.is_none_or(|s| s == *sub))
            .map(|(_, command, text)| (command, text)),
    );
    if roff.is_empty() {
        return roff;
    }
    format!(".SH EXAMPLES\n{roff}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The completion scripts the .deb installs must match what the
    /// current definitions generate; `scripts/gen-man.sh` rewrites them.
    #[test]
    fn checked_in_completions_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/completions");
        if !dir.exists() {
            eprintln!("skipped: docs/completions is checked in the workspace only");
            return;
        }
        for (shell, file) in [
            (Shell::Bash, "abslock.bash"),
            (Shell::Zsh, "_abslock"),
            (Shell::Fish, "abslock.fish"),
        ] {
            let have = std::fs::read(dir.join(file)).unwrap_or_default();
            assert!(
                have == completion_script(shell),
                "docs/completions/{file} is stale: run scripts/gen-man.sh"
            );
        }
    }

    /// The checked-in pages under docs/man must match what the current
    /// definitions generate; `scripts/gen-man.sh` rewrites them.
    #[test]
    fn checked_in_man_pages_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
        if !dir.exists() {
            eprintln!("skipped: docs/man is checked in the workspace only");
            return;
        }
        let cmd = full_command(false);
        let subs: Vec<Option<String>> = std::iter::once(None)
            .chain(
                cmd.get_subcommands()
                    .map(|s| Some(s.get_name().to_string())),
            )
            .collect();
        for sub in subs {
            let file = match &sub {
                None => "abslock.1".to_string(),
                Some(s) => format!("abslock-{s}.1"),
            };
            let want = render_man(sub.as_deref()).unwrap();
            let have = std::fs::read(dir.join(&file)).unwrap_or_default();
            assert!(
                have == want,
                "docs/man/{file} is stale: run scripts/gen-man.sh"
            );
        }
    }
}
