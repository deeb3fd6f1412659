//! `abslock completions` and `abslock man`, generated from the same clap
//! definitions that parse the command line.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::exit::{self, Failure};

/// Prints the completion script for a shell.
pub fn completions(args: &CompletionsArgs) -> Result<u8, Failure> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "abslock", &mut script);
    crate::out::write(&script);
    Ok(exit::OK)
}

/// Prints the man page of `abslock`, or of one subcommand.
pub fn man(subcommand: Option<&str>) -> Result<u8, Failure> {
    crate::out::write(&render_man(subcommand)?);
    Ok(exit::OK)
}

/// Renders `abslock(1)`, or `abslock-SUBCOMMAND(1)`.
pub fn render_man(subcommand: Option<&str>) -> Result<Vec<u8>, Failure> {
    let cmd = Cli::command();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).ok_or_else(|| {
                Failure::new(
                    exit::USAGE,
                    format!("no subcommand '{name}'; see 'abslock --help'"),
                )
            })?;
            sub.clone().name(format!("abslock-{name}"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Failure::new(exit::OSERR, format!("rendering the man page: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in pages under docs/man must match what the current
    /// definitions generate; `scripts/gen-man.sh` rewrites them.
    #[test]
    fn checked_in_man_pages_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
        let cmd = Cli::command();
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
