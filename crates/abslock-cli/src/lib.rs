//! `abslock`: the command-line face of the `abslock` library. `cli`
//! defines the arguments, `target` turns them into a lock, and each
//! subcommand lives in its own module under `commands`; this file parses
//! and dispatches. ARCHITECTURE.md maps the rest.
//! Two binaries run it: `abslock` (`src/main.rs`), without the cluster
//! engines, and `abslock-cluster` (`src/bin/abslock-cluster.rs`), with
//! them, which `abslock` execs when `--backend` names an engine
//! ([`engines`]).

mod cli;
mod commands;
pub mod engines;
mod exit;
mod out;
mod progress;
mod report;
pub mod start;
mod stop;
mod supervise;
mod target;
mod timed;
mod users;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use commands::{completions, doctor, held, kill, list, lock, man, run, send, status, wait};
pub use engines::Engines;
use supervise::{keeper, systemd};

/// Runs the command line of this process with `engines` for `--backend`.
pub fn main(engines: Engines) -> ExitCode {
    ExitCode::from(run(engines))
}

/// [`main`], returning the exit status as a number (for a `main` of our
/// own: see `crate::start`).
pub fn run(engines: Engines) -> u8 {
    engines::set(engines);
    let mut argv = std::env::args_os();
    match argv.nth(1) {
        Some(a) if a == systemd::SHIM => return systemd::shim(argv),
        Some(a) if a == keeper::KEEPER => return keeper::keeper(argv),
        _ => {}
    }
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let subject = match target::resolve(&mut cli.command) {
        Ok(subject) => subject,
        Err(why) => {
            eprintln!("abslock: {why}");
            return exit::USAGE;
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::status(&args),
        Command::Wait(args) => wait::wait(&args),
        Command::Kill(args) if args.lock.backend.is_some() => Err(local_only("kill")),
        Command::Send(args) if args.lock.backend.is_some() => Err(local_only("send")),
        Command::Kill(args) => kill::kill(&args),
        Command::Send(args) => send::send(&args),
        Command::Lock(args) => lock::lock(&args),
        Command::Unlock(args) => lock::unlock(&args),
        Command::Held(args) => held::held(&args),
        Command::List(args) => list::list(&args),
        Command::Doctor(args) => doctor::doctor(&args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => man::man(&args),
    };
    match result {
        Ok(code) => code,
        Err(mut failure) => {
            if let (false, Some(name)) = (failure.names_subject, subject) {
                // A lock file NAME (`file:PATH`, `/PATH`) whose path the
                // message names already is not said twice.
                let path = abslock::lock_file_path(&name).map(|p| p.to_string_lossy());
                if !path.is_some_and(|p| failure.message.contains(&*p)) {
                    failure = failure.context(name);
                }
            }
            eprintln!("abslock: {failure}");
            failure.code
        }
    }
}

fn local_only(what: &str) -> exit::Failure {
    exit::Failure::new(
        exit::USAGE,
        format!("{what} works on local locks only: a holder on another host cannot be reached from here"),
    )
}

/// Help and version go to stdout with status 0; every other parse error is
/// one line on stderr and `EX_USAGE`.
fn usage_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            exit::OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            eprintln!(
                "usage: abslock COMMAND [OPTIONS] NAME ... (COMMAND: {}); see 'abslock --help'",
                names.join(", ")
            );
            exit::USAGE
        }
        _ => {
            // clap's message up to the usage block, folded onto one line.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("abslock: {message} (see 'abslock --help')");
            exit::USAGE
        }
    }
}
