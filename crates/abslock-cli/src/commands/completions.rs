//! `abslock completions`, generated from the same clap definitions that
//! parse the command line (the man pages: `man.rs`).

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
}
