//! Reading a settings struct from `(name, value)` pairs, the way a container's environment
//! hands them over, without touching the process's own environment: each pair becomes the
//! long flag of the argument that reads that variable. A name that no argument reads is an
//! error, so a typo on either side of the contract fails here.

use std::ffi::OsStr;

use clap::error::ErrorKind;
use clap::{Args, Command, FromArgMatches};

/// Parses `S` from environment `pairs` alone (arguments not given take their defaults).
pub fn from_env_pairs<S, N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<S, clap::Error>
where
    S: Args + FromArgMatches,
    N: AsRef<str>,
    V: AsRef<str>,
{
    let command = S::augment_args(Command::new("settings").no_binary_name(true));
    let mut args = Vec::new();
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        let long = command
            .get_arguments()
            .find(|a| a.get_env() == Some(OsStr::new(name)))
            .and_then(|a| a.get_long())
            .ok_or_else(|| {
                Command::new("settings").error(
                    ErrorKind::UnknownArgument,
                    format!("no setting reads the environment variable {name}"),
                )
            })?;
        args.push(format!("--{long}={value}"));
    }
    // Only the pairs count: the process's environment must not fill the other arguments.
    let command = command.mut_args(|a| a.env(None::<&'static str>));
    let matches = command.try_get_matches_from(args)?;
    S::from_arg_matches(&matches)
}
