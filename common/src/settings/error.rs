//! [`SettingsError`]: a setting's value that a service does not accept, naming the setting by
//! its environment variable.

/// A setting a service does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The value lies outside the setting's range.
    #[error("checking setting {var}: {value} is outside {range}")]
    OutOfRange {
        /// The setting's environment variable.
        var: &'static str,
        /// The value, as text.
        value: String,
        /// The accepted values, as text (e.g. `4s..40s`, `at least 1024`).
        range: String,
    },
    /// The value is unacceptable for another reason.
    #[error("checking setting {var}: {reason}")]
    Invalid {
        /// The setting's environment variable.
        var: &'static str,
        /// Why.
        reason: String,
    },
}

impl SettingsError {
    /// The environment variable of the refused setting.
    pub fn var(&self) -> &'static str {
        match self {
            Self::OutOfRange { var, .. } | Self::Invalid { var, .. } => var,
        }
    }

    /// Why the value is refused, without the variable's name.
    pub fn reason(&self) -> String {
        match self {
            Self::OutOfRange { value, range, .. } => format!("{value} is outside {range}"),
            Self::Invalid { reason, .. } => reason.clone(),
        }
    }
}
