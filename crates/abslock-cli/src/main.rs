//! `abslock`: the command-line face of the `abslock` library. Each
//! subcommand lives in its own module; this file parses and dispatches.

mod cli;
mod completions;
mod doctor;
mod exit;
mod kill;
mod list;
mod progress;
mod replace;
mod run;
mod send;
mod status;
mod users;
mod wait;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage_error(&e)),
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::status(&args),
        Command::Wait(args) => wait::wait(&args),
        Command::Kill(args) => kill::kill(&args),
        Command::Send(args) => send::send(&args),
        Command::List(args) => list::list(&args),
        Command::Doctor(args) => doctor::doctor(&args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(args.subcommand.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("abslock: {failure}");
            ExitCode::from(failure.code)
        }
    }
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
            let _ = e.print();
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
