//! One module per subcommand. None imports another: what two of them
//! share is a module of the crate root (`target`, `report`, `stop`,
//! `timed`, `supervise`, ...).

pub mod completions;
pub mod doctor;
pub mod held;
pub mod kill;
pub mod list;
pub mod lock;
pub mod man;
pub mod run;
pub mod send;
pub mod status;
pub mod wait;
