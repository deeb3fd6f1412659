# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_abslock_global_optspecs
    string join \n h/help V/version
end

function __fish_abslock_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_abslock_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_abslock_using_subcommand
    set -l cmd (__fish_abslock_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c abslock -n "__fish_abslock_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c abslock -n "__fish_abslock_needs_command" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "run" -d 'Run a command while holding the lock'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "status" -d 'Show who holds a lock (exit 0 if held, 1 if free, 3 if squatted)'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "wait" -d 'Wait until a lock is free (exit 0), or time out (exit 1)'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "kill" -d 'Signal the holder of a lock through a pidfd and wait for the release'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "lock" -d 'Hold a lock for the rest of the calling script'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "unlock" -d 'Release the lock that `abslock lock --fd N` took'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "held" -d 'Exit 0 if the caller or an ancestor holds the lock, 1 if not'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "send" -d 'Hand arguments to the running instance and print its reply'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "list" -d 'List the locks held in this network namespace'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "doctor" -d 'Check, on this kernel, the rules abslock relies on'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "man" -d 'Print the man page (roff) of abslock or of one subcommand'
complete -c abslock -n "__fish_abslock_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s w -l timeout -l wait -d 'Give up after SECS seconds (fractions allowed, or units: 5m, 1h30m); 0 is -n' -r
complete -c abslock -n "__fish_abslock_using_subcommand run" -s E -l conflict-exit-code -d 'Exit status when the lock is held or the wait times out' -r
complete -c abslock -n "__fish_abslock_using_subcommand run" -s c -l command -d 'Run COMMAND_STRING with `sh -c`, as flock -c' -r
complete -c abslock -n "__fish_abslock_using_subcommand run" -l pidfile -d 'Write the command\'s pid to PATH while it runs, for tools that read PID files (atomically: a temporary file renamed into place); removed when the command exits. An existing PID file is ignored: the lock decides' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand run" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand run" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand run" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand run" -s n -l nonblock -l nb -d 'Fail at once if the lock is held (same as -w 0)'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s s -l shared -l read -d 'Take a shared lock (lock files only: any number of shared holders, none while an exclusive one holds it), as flock -s'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s x -l exclusive -l write -d 'Take an exclusive lock (the default), as flock -x'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s F -l exec -l no-fork -d 'Exec COMMAND in place of abslock: its pid is the holder\'s pid (flock\'s -F). Nobody then drains the backlog of the lock socket'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s o -l close -d 'Do not pass the lock to COMMAND: if abslock dies, the lock is released while COMMAND is still being killed, and processes COMMAND started keep running without it'
complete -c abslock -n "__fish_abslock_using_subcommand run" -l replace -d 'Replace the running holder: ask it to stop (or SIGTERM it through its pidfd if it takes no requests), wait for the release (-w, default 10 s), SIGKILL whatever still keeps the lock, then run'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s v -l verbose -d 'Say who held the lock, how long it waited, what it acquired (repeatable). A conflict with -n is silent without it, as with flock(1)'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s q -l quiet -d 'Print nothing but errors: no warnings, no notes'
complete -c abslock -n "__fish_abslock_using_subcommand run" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand run" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand run" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand status" -l pidfile -d 'Also say whether this PID file is current or stale (the process is gone, or its pid now belongs to a process that does not hold the lock)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand status" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand status" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand status" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand status" -l json -d 'Print one JSON object'
complete -c abslock -n "__fish_abslock_using_subcommand status" -s v -l verbose -d 'Also say how a waiter learns of the release: woken by the kernel, or polling (an fcntl lock holder, a name bound without listen)'
complete -c abslock -n "__fish_abslock_using_subcommand status" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand status" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand status" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand status" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand wait" -s w -l timeout -d 'Give up after SECS seconds' -r
complete -c abslock -n "__fish_abslock_using_subcommand wait" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand wait" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand wait" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand wait" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand wait" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand wait" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand wait" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand kill" -s s -l signal -d 'The signal: a name (TERM, SIGTERM) or a number' -r
complete -c abslock -n "__fish_abslock_using_subcommand kill" -s w -l timeout -d 'How long to wait for the release, in seconds' -r
complete -c abslock -n "__fish_abslock_using_subcommand kill" -l kill-after -d 'Send SIGKILL to every process keeping the lock if it is still held SECS seconds after the first signal' -r
complete -c abslock -n "__fish_abslock_using_subcommand kill" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand kill" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand kill" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand kill" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand kill" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand kill" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand kill" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s w -l timeout -l wait -d 'Give up after SECS seconds (fractions allowed, or units: 5m, 1h30m); 0 is -n' -r
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s E -l conflict-exit-code -d 'Exit status when the lock is held or the wait times out' -r
complete -c abslock -n "__fish_abslock_using_subcommand lock" -l fd -d 'Lock the file open on this descriptor of the calling shell (`exec 9>/run/job/lock`), with flock(2): the lock lasts as long as that open file, in the shell and every process that inherited it' -r
complete -c abslock -n "__fish_abslock_using_subcommand lock" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand lock" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand lock" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s n -l nonblock -l nb -d 'Fail at once if the lock is held (same as -w 0)'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s s -l shared -l read -d 'Take a shared lock (lock files only: any number of shared holders, none while an exclusive one holds it), as flock -s'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s x -l exclusive -l write -d 'Take an exclusive lock (the default), as flock -x'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s v -l verbose -d 'Say who held the lock, how long it waited, what it acquired (repeatable). A conflict with -n is silent without it, as with flock(1)'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s q -l quiet -d 'Print nothing but errors: no warnings, no notes'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c abslock -n "__fish_abslock_using_subcommand lock" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand unlock" -l fd -d 'The descriptor `abslock lock --fd` locked' -r
complete -c abslock -n "__fish_abslock_using_subcommand unlock" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand unlock" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand held" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand held" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand held" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand held" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand held" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand held" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c abslock -n "__fish_abslock_using_subcommand held" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand send" -s w -l timeout -d 'How long to wait for the reply, in seconds' -r
complete -c abslock -n "__fish_abslock_using_subcommand send" -l payload -d 'Opaque data to send along (the holder decides what it means)' -r
complete -c abslock -n "__fish_abslock_using_subcommand send" -l trust-uid -d 'Also trust holders running as UID (repeatable); by default only your own uid and root are trusted, others count as squatters' -r
complete -c abslock -n "__fish_abslock_using_subcommand send" -l file -d 'Also lock this file with flock(2), and let the file decide (combined mode): a squatter on the socket name cannot deny the lock. It must be in a directory only the lock\'s users can write to (a root-owned 0755 /run/NAME, not /run/lock or /tmp): otherwise abslock refuses it (exit 77)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand send" -l backend -d 'Lock across hosts on a cluster engine instead: etcd://HOST:PORT or etcd://USER@HOST:PORT (more endpoints after commas; ?ttl=SECS sets the lease, default 10; etcds://... or https://HOST:PORT for TLS with ?cacert=FILE&cert=FILE&key=FILE, the system\'s trust store without cacert; etcdctl\'s ETCDCTL_* variables are read) or postgres://USER@HOST/DB or "host=H user=U dbname=D" (libpq\'s PG* variables and ~/.pgpass are read). Give passwords in the environment, not here: see docs/cluster.md. NAME is then the lock\'s name on the engine; the holder is named by host (uname -n, or $ABSLOCK_HOST) and pid. file:PATH is the lock file PATH (the file backend; PATH/NAME if PATH is a directory)' -r
complete -c abslock -n "__fish_abslock_using_subcommand send" -l system -d 'Use the system-wide scope instead of the per-user one'
complete -c abslock -n "__fish_abslock_using_subcommand send" -l trust-any -d 'Trust holders of any uid (a lock that several users take in turn)'
complete -c abslock -n "__fish_abslock_using_subcommand send" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand send" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand list" -l json -d 'Print a JSON array'
complete -c abslock -n "__fish_abslock_using_subcommand list" -l all -d 'Every bound abstract socket name, not only abslock\'s'
complete -c abslock -n "__fish_abslock_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c abslock -n "__fish_abslock_using_subcommand list" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand doctor" -l json -d 'Print one JSON object'
complete -c abslock -n "__fish_abslock_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c abslock -n "__fish_abslock_using_subcommand completions" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand man" -l install -d 'Write every page to DIR/man1/ instead (for `cargo install`: `abslock man --install ~/.local/share/man`, then `man abslock-run`)' -r -F
complete -c abslock -n "__fish_abslock_using_subcommand man" -s h -l help -d 'Print help'
complete -c abslock -n "__fish_abslock_using_subcommand man" -s V -l version -d 'Print version'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "run" -d 'Run a command while holding the lock'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "status" -d 'Show who holds a lock (exit 0 if held, 1 if free, 3 if squatted)'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "wait" -d 'Wait until a lock is free (exit 0), or time out (exit 1)'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "kill" -d 'Signal the holder of a lock through a pidfd and wait for the release'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "lock" -d 'Hold a lock for the rest of the calling script'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "unlock" -d 'Release the lock that `abslock lock --fd N` took'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "held" -d 'Exit 0 if the caller or an ancestor holds the lock, 1 if not'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "send" -d 'Hand arguments to the running instance and print its reply'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "list" -d 'List the locks held in this network namespace'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "doctor" -d 'Check, on this kernel, the rules abslock relies on'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "man" -d 'Print the man page (roff) of abslock or of one subcommand'
complete -c abslock -n "__fish_abslock_using_subcommand help; and not __fish_seen_subcommand_from run status wait kill lock unlock held send list doctor completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
