//! Running the binary as a user would.

use std::path::Path;
use std::process::{Command, Output};

/// The `backfill` binary with a clean environment: no keys, no database URL, in `dir`.
pub(crate) fn backfill(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backfill"));
    cmd.current_dir(dir)
        .env_remove("POLYGON_API_KEY")
        .env_remove("MASSIVE_API_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("BACKFILL_DEMO")
        .env("RUST_LOG", "info");
    cmd
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A PostgreSQL database of its own for a test that runs processes, dropped at the end.
/// Fails (never skips) when PostgreSQL is not there.
pub(crate) struct TestDb {
    pub(crate) url: String,
    admin: String,
    name: String,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        let admin = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must point at PostgreSQL for the end-to-end tests");
        let name = format!("backfill_e2e_{}", uuid::Uuid::now_v7().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("PostgreSQL answers");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Self { url, admin, name }
    }

    pub(crate) async fn drop_db(self) {
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin).await {
            let _ = sqlx::Executor::execute(
                &mut conn,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str(),
            )
            .await;
        }
    }
}

/// A `backfill worker` process.
pub(crate) struct WorkerProcess {
    pub(crate) child: std::process::Child,
}

impl WorkerProcess {
    pub(crate) fn spawn(dir: &Path, database_url: &str, polygon: &str, extra: &[&str]) -> Self {
        let child = Self::command(dir, database_url, polygon, extra)
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("backfill worker starts");
        Self { child }
    }

    /// Starts a worker and waits until it says it is starting to take tasks (its storage is
    /// open and migrated, its market data client built).
    pub(crate) fn spawn_ready(
        dir: &Path,
        database_url: &str,
        polygon: &str,
        extra: &[&str],
    ) -> Self {
        let mut child = Self::command(dir, database_url, polygon, extra)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("backfill worker starts");
        let (ready, log) = watch_stderr(&mut child, "starting worker");
        if ready
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            panic!("the worker did not start: {:?}", log.lock().unwrap());
        }
        Self { child }
    }

    fn command(dir: &Path, database_url: &str, polygon: &str, extra: &[&str]) -> Command {
        let mut cmd = backfill(dir);
        cmd.arg("worker")
            .args(extra)
            .env("DATABASE_URL", database_url)
            .env("POLYGON_API_KEY", "e2e-key")
            .env("POLYGON_BASE_URL", polygon)
            .stdout(std::process::Stdio::null());
        cmd
    }

    /// The part of a worker id that names this process.
    pub(crate) fn pid_tag(&self) -> String {
        format!(":{}:", self.child.id())
    }

    /// SIGTERM, then wait: the worker must exit cleanly.
    pub(crate) fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
    }

    /// SIGKILL: no shutdown, no released leases.
    pub(crate) fn kill_9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, failing the test after `secs` seconds.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A `backfill serve` process listening on a free port.
pub(crate) struct ServeProcess {
    pub(crate) child: std::process::Child,
    pub(crate) base_url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts `backfill serve --bind 127.0.0.1:0` and waits until it says where it listens.
    pub(crate) fn spawn(dir: &Path, envs: &[(&str, &str)], extra: &[&str]) -> Self {
        let mut cmd = backfill(dir);
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("backfill serve starts");
        let (listening, log) = watch_stderr(&mut child, "listening on http://");
        let line = listening
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", log.lock().unwrap()));
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default();
        Self {
            child,
            base_url: format!("http://{addr}"),
            log,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Everything the process logged so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then wait: the server must exit cleanly.
    pub(crate) fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}: {:?}", self.log());
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drains a child's standard error for the whole life of the process, so that it never blocks,
/// into a log; the first line that contains `marker` is also sent on the channel.
fn watch_stderr(
    child: &mut std::process::Child,
    marker: &'static str,
) -> (
    std::sync::mpsc::Receiver<String>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("standard error is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(marker) {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
    (rx, log)
}

/// Checks a JSON response against the schema the served OpenAPI document gives for it.
pub(crate) fn assert_matches_openapi(
    doc: &serde_json::Value,
    path: &str,
    method: &str,
    status: u16,
    body: &serde_json::Value,
) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "the OpenAPI document has no JSON schema for {method} {path} {status}"
    );
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match its schema: {errors:#?}"
    );
}
