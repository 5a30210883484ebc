/// Everything that can be wrong with domain input. Each variant names the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A ticker that Polygon would not accept, or that is unsafe to echo.
    #[error("invalid symbol {input:?}: {reason}")]
    InvalidSymbol { input: String, reason: &'static str },
    /// A timeframe that does not parse or is out of bounds.
    #[error("invalid timeframe {input:?}: {reason}")]
    InvalidTimeframe { input: String, reason: String },
    /// A date range bound that does not parse, or bounds in the wrong order.
    #[error("invalid date range: {0}")]
    InvalidRange(String),
    /// A candle with values that cannot be stored honestly.
    #[error("invalid candle: {0}")]
    InvalidCandle(String),
    /// A job specification that breaks a rule (no symbols, too many symbols).
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// An unknown source, or one that cannot serve the job (its timeframe, adjustment or
    /// universe); the message names the fix.
    #[error("invalid source: {0}")]
    InvalidSource(String),
    /// A schedule or universe that breaks a rule (a bad trigger, name or look-back); the message
    /// names the bad value.
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
    /// A source that could serve the job but is not configured here (Flat Files without S3
    /// credentials); the message names the fix.
    #[error("source unavailable: {0}")]
    SourceUnavailable(String),
    /// A status change that the state machine does not allow.
    #[error("illegal {entity} transition from {from} to {to}")]
    IllegalTransition {
        entity: &'static str,
        from: &'static str,
        to: &'static str,
    },
}

/// The domain's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens user input before it is echoed in an error, so that a megabyte of garbage does not
/// become a megabyte of error message.
pub(crate) fn excerpt(input: &str) -> String {
    const MAX: usize = 64;
    if input.chars().count() <= MAX {
        input.to_owned()
    } else {
        let mut s: String = input.chars().take(MAX).collect();
        s.push('…');
        s
    }
}
