//! The engine's modules import each other in one direction only: no circle between the top-level
//! modules of `engine/src`, and the three layers stack — the saga log uses neither the driver nor
//! the engine, the driver does not use the engine. Read from the sources' `crate::` paths (root
//! re-exports resolved through `lib.rs`), so a new import that closes a circle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and its `#[cfg(test)]` module (tests may use
/// anything).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow each `crate::` in `code`, with a `crate::{a, b::c}` group giving each of
/// its first segments.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let first = item.trim().split("::").next().unwrap_or_default();
                out.push(first.trim().to_owned());
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// Top-level module of each name the crate root re-exports (`pub use log::db::Db;` → `Db` is
/// `log`'s).
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_end_matches(';');
        let module = path.split("::").next().unwrap_or_default().to_owned();
        let names = match path.find('{') {
            Some(i) => path[i + 1..path.len() - 1]
                .split(',')
                .map(|n| n.trim().to_owned())
                .collect(),
            None => vec![path.rsplit("::").next().unwrap_or_default().to_owned()],
        };
        for name in names {
            out.insert(name, module.clone());
        }
    }
    out
}

/// The graph of the engine's top-level modules: module → modules it imports from.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let exports = root_exports(&lib);
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for name in crate_paths(&code(&text)) {
            let target = exports.get(&name).cloned().unwrap_or(name);
            // `now_ms` and `with_pool!` live at the root: everything may use them.
            if target != module && target != "now_ms" && target != "with_pool" {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A circle through `graph`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut found = path[i..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_circle_between_the_engines_modules() {
    let graph = module_graph();
    assert!(graph.len() >= 10, "read too few modules: {graph:?}");
    assert!(
        graph["engine"].contains("saga") && graph["saga"].contains("log"),
        "the reader misses imports: {graph:?}"
    );
    if let Some(found) = circle(&graph) {
        panic!(
            "the engine's modules import in a circle: {}",
            found.join(" → ")
        );
    }
}

#[test]
fn the_layers_stack_log_then_driver_then_engine() {
    let graph = module_graph();
    for (lower, higher) in [("log", "saga"), ("log", "engine"), ("saga", "engine")] {
        assert!(
            !graph[lower].contains(higher),
            "`{lower}` imports from `{higher}`, a layer above it: {:?}",
            graph[lower]
        );
    }
}

#[test]
fn the_reader_finds_a_circle_when_there_is_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        circle(&graph).unwrap(),
        vec!["a", "b", "c", "a"],
        "{graph:?}"
    );
    assert_eq!(
        crate_paths("use crate::{Db, log::reserve}; x = crate::event::SagaId;"),
        vec!["Db", "log", "event"]
    );
}
