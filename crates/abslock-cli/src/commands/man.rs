//! `abslock man`: the man pages, generated from the same clap definitions
//! that parse the command line, with the sections a Debian maintainer
//! expects: NAME, SYNOPSIS (with value names), DESCRIPTION, OPTIONS, EXIT
//! STATUS, ENVIRONMENT, FILES, EXAMPLES, SEE ALSO. `scripts/gen-man.sh`
//! writes them to `docs/man` (the .deb installs those); `abslock man
//! --install DIR` writes them for a `cargo install` user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::cli::{full_command, ManArgs, EXIT_STATUS};
use crate::exit::{self, Failure};

/// Runs `abslock man`: prints a page, or installs them all.
pub fn man(args: &ManArgs) -> Result<u8, Failure> {
    if let Some(dir) = &args.install {
        return install(dir);
    }
    crate::out::write(&render_man(args.subcommand.as_deref())?);
    Ok(exit::OK)
}

/// The pages of `cmd` (the whole tree): `abslock` and one per subcommand.
pub fn pages(cmd: &clap::Command) -> Vec<Option<String>> {
    std::iter::once(None)
        .chain(
            cmd.get_subcommands()
                .map(|s| Some(s.get_name().to_string())),
        )
        .collect()
}

/// The file name of a page.
pub fn file_name(subcommand: Option<&str>) -> String {
    match subcommand {
        None => "abslock.1".into(),
        Some(s) => format!("abslock-{s}.1"),
    }
}

/// Writes every page to `DIR/man1/`, where man(1) finds them once `DIR` is
/// in its path (`~/.local/share/man` is, on most systems). DIR is the
/// user's choice; what is in it is not: `man1` is not followed if it is a
/// symlink of another user, a page is not written through a symlink, and
/// only a regular file is replaced (never a device or a FIFO).
fn install(dir: &Path) -> Result<u8, Failure> {
    let man1 = dir.join("man1");
    let failed = |what: &Path, why: &dyn std::fmt::Display| {
        Failure::new(
            exit::CANTCREAT,
            format!(
                "cannot write man page {}: {why}",
                abslock::__private::escape::escape(what.as_os_str().as_encoded_bytes())
            ),
        )
    };
    std::fs::create_dir_all(&man1).map_err(|e| failed(&man1, &e))?;
    let meta = std::fs::symlink_metadata(&man1).map_err(|e| failed(&man1, &e))?;
    let me = rustix::process::getuid().as_raw();
    if meta.file_type().is_symlink() && meta.uid() != me && meta.uid() != 0 {
        return Err(failed(
            &man1,
            &format_args!("a symbolic link of uid {}; not followed", meta.uid()),
        ));
    }
    let cmd = full_command(false);
    for page in pages(&cmd) {
        let path = man1.join(file_name(page.as_deref()));
        let text = render(&cmd, page.as_deref())?;
        write_regular(&path, &text).map_err(|e| failed(&path, &e))?;
    }
    eprintln!(
        "abslock: man pages written to {}",
        abslock::__private::escape::escape(man1.as_os_str().as_encoded_bytes())
    );
    Ok(exit::OK)
}

/// Writes `text` to `path`, creating it or replacing the content of a
/// regular file there, never through a symlink (`O_NOFOLLOW`) and never
/// into a FIFO or a device (`O_NONBLOCK`, then checked before truncating).
fn write_regular(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file; not replaced"));
    }
    file.set_len(0)?;
    file.write_all(text)
}

/// Renders `abslock(1)`, or `abslock-SUBCOMMAND(1)`.
pub fn render_man(subcommand: Option<&str>) -> Result<Vec<u8>, Failure> {
    render(&full_command(false), subcommand)
}

/// [`render_man`] from `cmd`, the whole tree built once.
fn render(cmd: &clap::Command, subcommand: Option<&str>) -> Result<Vec<u8>, Failure> {
    let page = match subcommand {
        None => cmd.clone(),
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
    let synopsis = synopsis(&page, subcommand);
    let man = clap_mangen::Man::new(page);
    let mut out = Vec::new();
    let rendered = (|| -> std::io::Result<()> {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        out.extend_from_slice(synopsis.as_bytes());
        man.render_description_section(&mut out)?;
        if has_args {
            man.render_options_section(&mut out)?;
        }
        if subcommand.is_none() {
            man.render_subcommands_section(&mut out)?;
        }
        out.extend_from_slice(exit_status().as_bytes());
        out.extend_from_slice(environment().as_bytes());
        out.extend_from_slice(FILES.as_bytes());
        out.extend_from_slice(examples(subcommand).as_bytes());
        out.extend_from_slice(see_also(subcommand).as_bytes());
        man.render_version_section(&mut out)
    })();
    rendered.map_err(|e| Failure::new(exit::OSERR, format!("rendering the man page: {e}")))?;
    Ok(out)
}

/// roff text: backslashes and hyphens escaped, a leading dot or quote
/// kept from starting a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.chars().next() {
        Some('.' | '\'') => format!("\\&{text}"),
        _ => text,
    }
}

/// SYNOPSIS as the command is typed, with value names: `abslock run [-w|
/// --timeout SECS] ... NAME [COMMAND]...`.
fn synopsis(page: &clap::Command, subcommand: Option<&str>) -> String {
    let mut line = match subcommand {
        None => return ".SH SYNOPSIS\n\\fBabslock\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fINAME\\fR] [\\fIARGS\\fR...]\n".into(),
        Some(name) => format!("\\fBabslock {}\\fR", roff(name)),
    };
    // Options first, then the positional arguments, as they are typed.
    let mut args: Vec<&clap::Arg> = page.get_arguments().filter(|a| !a.is_hide_set()).collect();
    args.sort_by_key(|a| a.is_positional());
    for arg in args {
        if arg.is_positional() {
            let shown = arg
                .get_value_names()
                .map_or_else(|| arg.get_id().to_string().to_uppercase(), |n| n.join(" "));
            let shown = format!("\\fI{}\\fR", roff(&shown));
            let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            let dots = if many { "..." } else { "" };
            line.push_str(&if arg.is_required_set() {
                format!(" {shown}{dots}")
            } else {
                format!(" [{shown}{dots}]")
            });
            continue;
        }
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("\\fB\\-{}\\fR", roff(&short.to_string())));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("\\fB\\-\\-{}\\fR", roff(long)));
        }
        let value: String = match arg.get_value_names() {
            Some(values) if arg.get_num_args().is_some_and(|n| n.takes_values()) => values
                .iter()
                .map(|v| format!(" \\fI{}\\fR", roff(v)))
                .collect(),
            _ => String::new(),
        };
        line.push_str(&format!(" [{}{value}]", names.join("|")));
    }
    format!(".SH SYNOPSIS\n{line}\n")
}

/// EXIT STATUS, from the same table `--help` shows.
fn exit_status() -> String {
    let items: Vec<(String, String)> = EXIT_STATUS
        .iter()
        .map(|(code, text)| (roff(code), roff(text)))
        .collect();
    format!(
        ".SH EXIT STATUS\n{}",
        tagged(items.iter().map(|(c, t)| (c.as_str(), t.as_str())))
    )
}

/// FILES: what abslock creates on disk, and where.
const FILES: &str = ".SH FILES
.TP
\\fB$XDG_RUNTIME_DIR/abslock/NAME.lock\\fR, \\fB/run/user/UID/abslock/NAME.lock\\fR, \\fB/run/abslock/NAME.lock\\fR (root)
The lock file a per-user NAME also takes, so that another network namespace cannot run a second instance; created mode 0600 in a directory of mode 0700, removed by the last holder at its release.
.TP
\\fB/proc/net/unix\\fR, \\fB/proc/locks\\fR, \\fB/proc/PID/fd\\fR
Where holders are found (with \\fBsock_diag\\fR(7) for exact addresses).
";

/// SEE ALSO.
fn see_also(subcommand: Option<&str>) -> String {
    let own = if subcommand.is_some() {
        "\\fBabslock\\fR(1), "
    } else {
        ""
    };
    format!(
        ".SH SEE ALSO\n{own}\\fBflock\\fR(1), \\fBflock\\fR(2), \\fBunix\\fR(7), \\fBpidfd_open\\fR(2), \\fBsystemd.exec\\fR(5)\n"
    )
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
        for sub in pages(&cmd) {
            let file = file_name(sub.as_deref());
            let want = render(&cmd, sub.as_deref()).unwrap();
            let have = std::fs::read(dir.join(&file)).unwrap_or_default();
            assert!(
                have == want,
                "docs/man/{file} is stale: run scripts/gen-man.sh"
            );
        }
    }
}
