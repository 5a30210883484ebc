//! The architecture's rules, checked on the code itself: which crate may depend on which (so the
//! compiler refuses a crossed layer), and that no module of a crate depends on a module that
//! depends on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates (with the features they are built with) and what they must not depend on, even
/// indirectly, in their normal (non-dev) dependencies.
const FORBIDDEN: &[(&str, &[&str], &[&str])] = &[
    (
        "backfill-domain",
        &[],
        &["tokio", "sqlx", "reqwest", "axum", "hyper", "backfill-"],
    ),
    (
        "backfill-progress",
        &[],
        &[
            "sqlx",
            "reqwest",
            "axum",
            "backfill-storage",
            "backfill-polygon",
        ],
    ),
    (
        "backfill-storage",
        &["--no-default-features"],
        &["sqlx", "reqwest", "axum"],
    ),
    ("backfill-storage", &[], &["reqwest", "axum"]),
    (
        "backfill-export",
        &[],
        &[
            "tokio",
            "sqlx",
            "reqwest",
            "axum",
            "hyper",
            "backfill-storage",
            "backfill-polygon",
            "backfill-worker",
            "backfill-api",
        ],
    ),
    (
        "backfill-polygon",
        &[],
        &["sqlx", "axum", "backfill-storage"],
    ),
    (
        "backfill-polygon-sim",
        &[],
        &["sqlx", "reqwest", "backfill-storage"],
    ),
    (
        "backfill-worker",
        &[],
        &["sqlx", "axum", "backfill-api", "backfill-polygon-sim"],
    ),
    (
        "backfill-api",
        &[],
        &[
            "sqlx",
            "reqwest",
            "backfill-worker",
            "backfill-polygon",
            "backfill-polygon-sim",
        ],
    ),
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The packages `package` depends on (normal dependencies, transitively), by name.
fn dependencies(package: &str, flags: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["-p", package])
        .args(flags)
        .current_dir(workspace())
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_owned)
        .collect()
}

#[test]
fn layers_are_dependencies_that_the_compiler_enforces() {
    let mut crossed = Vec::new();
    for (package, flags, forbidden) in FORBIDDEN {
        let deps = dependencies(package, flags);
        assert!(
            !deps.is_empty() || *package == "backfill-domain",
            "cargo tree listed nothing for {package}"
        );
        for dep in &deps {
            if forbidden
                .iter()
                .any(|f| dep == f || (f.ends_with('-') && dep.starts_with(f)))
            {
                crossed.push(format!("{package} {flags:?} depends on {dep}"));
            }
        }
    }
    assert!(
        crossed.is_empty(),
        "layers crossed:\n{}",
        crossed.join("\n")
    );
}

/// The top-level modules of the crate whose root is `src/lib.rs` or `src/main.rs`, each with the
/// top-level modules it refers to through `crate::` paths (directly, or through a name the
/// crate root re-exports). Comments and `mod tests` blocks are left out.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let root = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|p| p.exists())
        .expect("a crate root");
    let root_text = strip(&std::fs::read_to_string(&root).unwrap());
    // `pub use module::{A, B};` and `pub use module::A;` at the root.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for stmt in root_text.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = item.split(" as ").last().unwrap_or_default().trim();
            if !name.is_empty() {
                reexports.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path == root || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if rel.file_stem().is_some_and(|s| s == "tests") {
            continue;
        }
        let text = strip(&std::fs::read_to_string(&path).unwrap());
        let refs = graph.entry(top.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(str::trim)
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let ident: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let module = reexports.get(&ident).cloned().unwrap_or(ident);
                if !module.is_empty() && module != top {
                    refs.insert(module);
                }
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for refs in graph.values_mut() {
        refs.retain(|m| modules.contains(m));
    }
    graph
}

/// The text without line comments and without `#[cfg(test)] mod tests { ... }` at its end.
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_depends_on_a_module_that_depends_on_it() {
    let mut sources = vec![workspace().join("src")];
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        sources.push(entry.unwrap().path().join("src"));
    }
    let mut cycles = Vec::new();
    let mut modules = 0;
    for src in &sources {
        let graph = module_graph(src);
        modules += graph.len();
        if let Some(cycle) = find_cycle(&graph) {
            cycles.push(format!("{}: {}", src.display(), cycle.join(" -> ")));
        }
    }
    assert!(modules > 50, "only {modules} modules found");
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&graph(&[("task", "worker"), ("worker", "task")])),
        Some(vec!["task".into(), "worker".into(), "task".into()])
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    // A grouped import through a root re-export counts as a reference to the defining module.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lib.rs"),
        "mod task;\nmod worker;\npub use worker::{Worker, WorkerDeps};\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("task.rs"), "use crate::{Worker, Result};\n").unwrap();
    std::fs::write(dir.path().join("worker.rs"), "use crate::task::run;\n").unwrap();
    assert!(find_cycle(&module_graph(dir.path())).is_some());
}
