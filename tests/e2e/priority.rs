//! `serve` runs its embedded worker on threads of lower CPU priority than the API's, so that a
//! request is answered before more ingest when every core is busy.
#![cfg(target_os = "linux")]

use crate::helpers::ServeProcess;

/// (thread name, niceness) of every thread of `pid`, from /proc.
fn threads(pid: u32) -> Vec<(String, i64)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
            // "tid (comm) state ppid ...": the niceness is field 19, the 17th after the comm.
            let (head, tail) = stat.rsplit_once(')').unwrap();
            let name = head.split_once('(').unwrap().1.to_owned();
            let nice = tail.split_whitespace().nth(16).unwrap().parse().unwrap();
            (name, nice)
        })
        .collect()
}

fn niceness_of(server: &ServeProcess, prefix: &str) -> Vec<i64> {
    threads(server.child.id())
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, nice)| nice)
        .collect()
}

/// The niceness of the threads named `prefix...` once they all have `nice`: a new thread has its
/// name before it runs the code that lowers its priority, so this polls (for up to 30 s) rather
/// than reading once.
fn settled_niceness(server: &ServeProcess, prefix: &str, nice: i64) -> Vec<i64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = niceness_of(server, prefix);
        if (!found.is_empty() && found.iter().all(|n| *n == nice))
            || std::time::Instant::now() > deadline
        {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_embedded_worker_runs_below_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::spawn(dir.path(), &[], &["--demo"]);
    let ingest = settled_niceness(&server, "backfill-ingest", 10);
    let api = niceness_of(&server, "tokio-r");
    assert!(
        !ingest.is_empty() && !api.is_empty(),
        "{:?}",
        threads(server.child.id())
    );
    assert!(
        ingest.iter().all(|n| *n == 10),
        "ingest threads: {ingest:?}; log: {:?}",
        server.log()
    );
    assert!(api.iter().all(|n| *n == 0), "API threads: {api:?}");
    server.terminate();

    let server = ServeProcess::spawn(dir.path(), &[("BACKFILL_WORKER_NICE", "0")], &["--demo"]);
    let ingest = settled_niceness(&server, "backfill-ingest", 0);
    assert!(
        !ingest.is_empty() && ingest.iter().all(|n| *n == 0),
        "{ingest:?}"
    );
    server.terminate();
}

#[test]
fn a_niceness_out_of_range_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::helpers::backfill(dir.path())
        .args(["serve", "--demo", "--worker-nice", "20"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = crate::helpers::stderr(&out);
    assert!(err.contains("--worker-nice") && err.contains("20"), "{err}");
}
