/// What can go wrong when running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("could not bind the simulator to {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the simulator stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("the simulator task ended abnormally: {0}")]
    Task(String),
}

/// The simulator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
