//! The shape of `src/`, as ARCHITECTURE.md draws it, checked on the code itself: which file
//! imports which (every `crate::…` and `super::…` path outside the unit tests, and a folder's
//! `mod.rs` naming its children), that no two files import each other round a circle, that every
//! import goes down the layers, that the leaves know nothing of the application, that only
//! `main.rs` touches the process's streams, and which files may take a secret out of its
//! wrapper. `cargo test --test architecture -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers, top first. A file may import only from a lower layer, or from `sys` (the one
/// platform file) and `error` (the one error type), or from a sibling in its own folder.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["cli"],
    &["actions", "commands", "kubelet"],
    &["resolve"],
    &["source"],
    &["context"],
    &["config", "logins"],
    &["iam"],
    &["paths", "protocol", "invocation"],
    &["files", "registry", "secret", "clock", "jwt", "log", "mode", "duration", "env", "error", "sys"],
];

/// The leaves: they import nothing of the application but the platform file and the error type.
const LEAVES: &[&str] =
    &["files", "registry", "secret", "clock", "jwt", "log", "mode", "duration", "env", "error", "sys"];

/// The files that may call `Secret::expose`, each for where a secret must leave as it is or be
/// read as a token; a new caller is a decision to make here, in review.
const MAY_EXPOSE: &[&str] = &[
    "protocol.rs",         // the `get` answer
    "iam/request.rs",      // the request bodies and the metadata service's bearer
    "iam/cache.rs",        // the cache key, a hash of the credential
    "commands/exec.rs",    // the child's environment
    "commands/explain.rs", // a bearer token's expiry
    "kubelet/mod.rs",      // the response's password; whom a service account token names
    "kubelet/wire.rs",     // whether the request's token is empty
    "resolve.rs",          // a bearer token's expiry
];

/// `src/` as module name (`iam/cache`, `source`, `cli`) → text without its unit tests.
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().to_str().unwrap().trim_end_matches(".rs").to_owned();
            let module = rel.strip_suffix("/mod").unwrap_or(&rel).to_owned();
            if module == "lib" {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            out.insert(module, strip_comments(&code));
        }
    }
    out
}

fn strip_comments(code: &str) -> String {
    code.lines().map(|l| if l.trim_start().starts_with("//") { "" } else { l }).collect::<Vec<_>>().join("\n")
}

/// The module a path names: the longest prefix of `segments` that is a file.
fn resolve(modules: &BTreeSet<String>, segments: &[&str]) -> Option<String> {
    (1..=segments.len()).rev().map(|n| segments[..n].join("/")).find(|m| modules.contains(m))
}

/// Paths after `prefix` in `code`, as segments: `crate::iam::{a, b}` gives `[iam]`, `[iam, a]` …
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let segments = segments.into_iter().map(|s| &rest[rest.find(s).unwrap()..][..s.len()]).collect();
        out.push(segments);
        // `crate::a::{b, c::d}`: each item of the braces is a path under `a`.
        let after = &rest[path.len()..];
        if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            for item in inner[..end].split(',') {
                let item = item.trim().split(" as ").next().unwrap().trim();
                if item.is_empty() || item == "self" {
                    continue;
                }
                let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                segments.extend(item.split("::").filter(|s| !s.is_empty() && *s != "{"));
                out.push(segments.into_iter().map(|s| leak(s.to_owned())).collect());
            }
        }
    }
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// file → the files it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let sources = sources();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, code) in &sources {
        let folder: Vec<&str> = module.split('/').collect();
        let is_folder_root = modules.iter().any(|m| m.starts_with(&format!("{module}/")));
        let parent = if is_folder_root { &folder[..] } else { &folder[..folder.len() - 1] };
        let mut edges = BTreeSet::new();
        for segments in paths_after(code, "crate::") {
            edges.extend(resolve(&modules, &segments));
        }
        for segments in paths_after(code, "super::") {
            let base: Vec<&str> = if is_folder_root { folder[..folder.len() - 1].to_vec() } else { parent.to_vec() };
            let full: Vec<&str> = base.into_iter().chain(segments).collect();
            edges.extend(resolve(&modules, &full));
        }
        if is_folder_root {
            // A folder's root naming its children (`pub use cache::…`, `config::ConfigEntry`).
            for child in modules.iter().filter_map(|m| m.strip_prefix(&format!("{module}/"))) {
                if !paths_after(code, &format!("{child}::")).is_empty() {
                    edges.insert(format!("{module}/{child}"));
                }
            }
        }
        edges.remove(module);
        graph.insert(module.clone(), edges);
    }
    graph
}

fn top_level(module: &str) -> &str {
    module.split('/').next().unwrap()
}

fn layer(module: &str) -> usize {
    LAYERS.iter().position(|l| l.contains(&top_level(module))).unwrap_or_else(|| panic!("{module} is in no layer"))
}

#[test]
fn every_file_of_src_is_in_a_layer() {
    for module in graph().keys() {
        layer(module);
    }
}

#[test]
fn no_files_of_src_import_each_other_round_a_circle() {
    let graph = graph();
    for (module, edges) in &graph {
        println!("{module} -> {}", edges.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    // Depth-first search for a back edge; report the circle it closes.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            panic!("import circle: {} -> {node}", path[at..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node);
        for next in &graph[node] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn every_import_goes_down_the_layers() {
    let mut wrong = Vec::new();
    for (module, edges) in graph() {
        for to in edges {
            // Within a folder the files may use each other; the circle test keeps that acyclic.
            let same_folder = top_level(&module) == top_level(&to);
            if layer(&to) > layer(&module) || to == "sys" || to == "error" || same_folder {
                continue;
            }
            wrong.push(format!("{module} -> {to}"));
        }
    }
    assert!(wrong.is_empty(), "imports that go up or sideways: {wrong:#?}");
}

#[test]
fn the_leaves_import_nothing_of_the_application_but_the_platform_file_and_the_error_type() {
    let graph = graph();
    for leaf in LEAVES {
        let edges: Vec<&String> = graph[*leaf].iter().filter(|e| *e != "sys" && *e != "error").collect();
        assert!(edges.is_empty(), "{leaf} imports {edges:?}");
    }
}

#[test]
fn only_main_touches_the_process_streams_and_only_env_reads_the_environment() {
    for (module, code) in sources() {
        for word in ["std::io::stdout", "std::io::stderr", "std::io::stdin", "std::process::exit"] {
            assert!(module == "main" || !code.contains(word), "src/{module}.rs uses {word}");
        }
        for word in ["print!(", "println!(", "eprint!(", "eprintln!(", "dbg!("] {
            assert!(!code.contains(word), "src/{module}.rs uses {word}");
        }
        for word in ["std::env::var", "env::var(", "env::var_os("] {
            assert!(module == "env" || !code.contains(word), "src/{module}.rs reads the environment with {word}");
        }
    }
}

#[test]
fn only_the_listed_files_take_a_secret_out_of_its_wrapper() {
    let mut callers = BTreeSet::new();
    for (module, code) in sources() {
        if code.contains(".expose()") {
            let file = if graph().keys().any(|m| m.starts_with(&format!("{module}/"))) {
                format!("{module}/mod.rs")
            } else {
                format!("{module}.rs")
            };
            callers.insert(file);
        }
    }
    let allowed: BTreeSet<String> = MAY_EXPOSE.iter().map(|s| s.to_string()).collect();
    let extra: Vec<&String> = callers.difference(&allowed).collect();
    assert!(extra.is_empty(), "files that call Secret::expose but are not in MAY_EXPOSE: {extra:?}");
    let stale: Vec<&String> = allowed.difference(&callers).collect();
    assert!(stale.is_empty(), "MAY_EXPOSE names files that no longer call it: {stale:?}");
}

#[test]
fn the_checker_finds_the_imports_it_is_meant_to() {
    // Its own parser, on shapes the code uses.
    let code = "use crate::iam::{self, Grant, cache::TokenCache};\nlet x = crate::duration::parse(t);\nuse super::credential::{Found};";
    let crate_paths = paths_after(code, "crate::");
    assert!(crate_paths.contains(&vec!["iam"]));
    assert!(crate_paths.contains(&vec!["iam", "cache", "TokenCache"]));
    assert!(crate_paths.contains(&vec!["duration", "parse"]));
    assert!(paths_after(code, "super::").contains(&vec!["credential", "Found"]));
    assert!(paths_after("let a = xcrate::b;", "crate::").is_empty());
    let graph = graph();
    assert!(graph["cli"].contains("kubelet"), "{:?}", graph["cli"]);
    assert!(graph["source/config"].contains("source/credential"), "{:?}", graph["source/config"]);
    assert!(graph["iam"].contains("iam/cache"), "{:?}", graph["iam"]);
    assert!(graph["kubelet"].contains("duration"), "{:?}", graph["kubelet"]);
}
