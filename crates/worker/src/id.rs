use std::fmt;

use rand::Rng;

/// A worker's unique identity: host, process id and a random part, such as
/// `db-host-1:4242:9f3a1c`. It names the lease holder in storage, so two workers never share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// A fresh id for a worker in this process on `host`.
    pub fn generate(host: &str) -> Self {
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            .take(64)
            .collect();
        let host = if host.is_empty() {
            "host".to_owned()
        } else {
            host
        };
        let random: u32 = rand::rng().random_range(0..0x100_0000);
        Self(format!("{host}:{}:{random:06x}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_host_and_pid_and_differ() {
        let a = WorkerId::generate("db-1.example");
        let b = WorkerId::generate("db-1.example");
        assert_ne!(a, b);
        let pid = std::process::id().to_string();
        let parts: Vec<&str> = a.as_str().split(':').collect();
        assert_eq!(parts[..2], ["db-1.example", pid.as_str()]);
        assert_eq!(parts[2].len(), 6);
    }

    #[test]
    fn hostile_host_names_are_cleaned() {
        let id = WorkerId::generate("a b/c<d>\n");
        assert!(id.as_str().starts_with("abcd:"), "{id}");
        assert!(WorkerId::generate("").as_str().starts_with("host:"));
    }
}
