//! The module graph has no circles, and the parts depend one way (issue 14).
//!
//! Reads `src/**/*.rs` as text and draws an edge from a module to every module its code names
//! through `crate::…` or `super::…` (`use` lines with their `{…}` groups, paths in code and
//! doc links alike). Test modules are left out: the inline `#[cfg(test)] mod … {` at the end
//! of a file and files named `tests.rs` or `*_tests.rs`. A path belongs to the longest module
//! it starts with; a module naming its own parent is no edge (a child sees its parent's
//! items by nature). Any strongly connected part of two or more modules fails the test, and
//! the message walks one circle through it (`memory -> model -> native -> memory`).
//!
//! The parts are the folders of `src/`: `engine` (decisions, pure), `azure` (the ARM
//! client), `daemon` (the shell's I/O), `sim` (demo and simulate), `cli`, and `clock`. Each
//! may name only the parts listed for it in [`ALLOWED`]. The emulator is a crate of its own
//! (`crates/azure-ml-emulator`), which Cargo keeps from depending on lightsout. Text, not the compiler: a path
//! built by a macro would be missed, and a path in a comment counts (a doc link is a
//! dependency of the documentation, and one worth keeping one-way too).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One module's name (`azure::client`; the crate root is left out) and its file's text.
struct Source {
    module: String,
    text: String,
}

/// Every module of `src`, but the test files and the crate roots.
fn sources(src: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts
                .last()
                .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
            {
                parts.pop();
            }
            let test_file = parts
                .last()
                .is_some_and(|l| l == "tests" || l.ends_with("_tests"));
            if parts.is_empty() || test_file {
                continue;
            }
            out.push(Source {
                module: parts.join("::"),
                text: std::fs::read_to_string(&path).unwrap(),
            });
        }
    }
    out.sort_by(|a, b| a.module.cmp(&b.module));
    out
}

/// `text` without its inline test module (`#[cfg(test)]` then `mod name {`), which by house
/// style closes the file.
fn without_tests(text: &str) -> &str {
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]") {
        let start = from + at;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        if let Some(decl) = rest.strip_prefix("mod ") {
            let name_end = decl
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(decl.len());
            if decl[name_end..].trim_start().starts_with('{') {
                return &text[..start];
            }
        }
        from = start + 1;
    }
    text
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads a use tree (or a plain path) at the start of `s`, pushing every full path it names
/// onto `out` with `prefix` before it; returns how many bytes it read.
fn use_tree(s: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let mut i = s.len() - s.trim_start().len();
    if s[i..].starts_with('{') {
        i += 1;
        loop {
            i += s[i..].len() - s[i..].trim_start().len();
            match s[i..].chars().next() {
                None => return i,
                Some('}') => return i + 1,
                Some(',') => i += 1,
                Some(_) => {
                    let read = use_tree(&s[i..], prefix, out);
                    if read == 0 {
                        // Not a use tree after all (`{` in code): stop here.
                        return i;
                    }
                    i += read;
                }
            }
        }
    }
    let len = s[i..].find(|c: char| !is_ident(c)).unwrap_or(s.len() - i);
    if len == 0 {
        if s[i..].starts_with('*') {
            out.push(prefix.trim_end_matches("::").to_owned());
            return i + 1;
        }
        return 0;
    }
    let path = format!("{prefix}{}", &s[i..i + len]);
    i += len;
    if s[i..].starts_with("::") {
        let read = use_tree(&s[i + 2..], &format!("{path}::"), out);
        if read > 0 {
            return i + 2 + read;
        }
    }
    out.push(path);
    i
}

/// Every path `text` names through `marker` (`crate::` or `super::`), without the marker.
fn paths_after(text: &str, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(marker) {
        let start = from + at;
        from = start + marker.len();
        if text[..start].chars().next_back().is_some_and(is_ident) {
            continue; // `mycrate::`, `foosuper::`
        }
        if text[..start].ends_with("::") {
            continue; // the inner `super::` of `super::super::`, read with the outer one
        }
        use_tree(&text[from..], "", &mut out);
    }
    out
}

/// The longest module `path` starts with.
fn owner<'a>(modules: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .find_map(|n| modules.get(&segs[..n].join("::")))
}

/// Module → the modules it names, each with one path that shows why.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn graph(sources: &[Source]) -> Graph {
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut edges = Graph::new();
    for s in sources {
        let text = without_tests(&s.text);
        let here: Vec<&str> = s.module.split("::").collect();
        let mut named: Vec<String> = paths_after(text, "crate::");
        for p in paths_after(text, "super::") {
            // Each further `super` climbs one more level.
            let mut base = here[..here.len() - 1].to_vec();
            let mut rest: Vec<&str> = p.split("::").collect();
            while rest.first() == Some(&"super") {
                rest.remove(0);
                base.pop();
            }
            base.extend(rest);
            named.push(base.join("::"));
        }
        for path in named {
            let Some(to) = owner(&modules, &path) else {
                continue;
            };
            let own_parent = s.module.starts_with(&format!("{to}::"));
            if *to != s.module && !own_parent {
                edges
                    .entry(s.module.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_insert(path);
            }
        }
    }
    edges
}

/// Strongly connected parts of two or more modules (Tarjan).
fn circles(edges: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        edges: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges: &'a Graph = self.edges;
            for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut part = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    part.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if part.len() > 1 {
                    part.sort();
                    self.out.push(part);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// One circle through `part`, from its first module back to it, each step with the path
/// that makes it (`memory -> model (crate::model::Action) -> …`).
fn walk(edges: &Graph, part: &[String]) -> String {
    let inside: BTreeSet<&str> = part.iter().map(String::as_str).collect();
    let start = part[0].as_str();
    // Breadth-first from `start` within the part, until an edge leads back to it.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = start;
    'search: while let Some(v) = queue.pop_front() {
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if w == start {
                last = v;
                break 'search;
            }
            if inside.contains(w) && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    // Back from `last` to `start` (which has no entry), then around.
    let mut back = vec![last];
    while let Some(&prev) = came_from.get(back[back.len() - 1]) {
        back.push(prev);
    }
    if back[back.len() - 1] != start {
        back.push(start);
    }
    back.reverse();
    let mut chain = back;
    chain.push(start);
    let mut text = chain[0].to_owned();
    for pair in chain.windows(2) {
        let why = &edges[pair[0]][pair[1]];
        text.push_str(&format!(" -> {} (crate::{why})", pair[1]));
    }
    text
}

fn source(module: &str, text: &str) -> Source {
    Source {
        module: module.to_owned(),
        text: text.to_owned(),
    }
}

#[test]
fn the_module_graph_has_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = sources(&src);
    assert!(
        sources.iter().any(|s| s.module == "engine::native::types"),
        "the walk over src/ found the modules"
    );
    let edges = graph(&sources);
    let found: Vec<String> = circles(&edges)
        .iter()
        .map(|part| walk(&edges, part))
        .collect();
    assert!(
        found.is_empty(),
        "import circles among the modules of src/ (break each by moving the shared part \
         below both sides):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_and_names_a_circle() {
    let sources = [
        source("memory", "use crate::model::Action;\n"),
        source(
            "model",
            "//! Vocabulary.\npub native: crate::native::NativeObserved,\n",
        ),
        source(
            "native",
            "use crate::{\n    policy::Event,\n    memory::{self, NativePending},\n};\n",
        ),
        source("policy", "use crate::schedule::Schedule;\n"),
        source("schedule", ""),
    ];
    let edges = graph(&sources);
    let found = circles(&edges);
    assert_eq!(found, vec![vec!["memory", "model", "native"]]);
    let walked = walk(&edges, &found[0]);
    assert!(walked.starts_with("memory -> model"), "{walked}");
    assert!(
        walked.ends_with("-> memory (crate::memory::self)"),
        "{walked}"
    );
}

#[test]
fn super_paths_children_and_test_modules() {
    let sources = [
        // A child naming its parent is no edge; `super::super::` climbs two levels.
        source(
            "azure::error",
            "use super::wire::Status;\nfn f() { super::super::model::x(); }\n",
        ),
        source("azure::wire", "pub fn g() { super::error::kind(); }\n"),
        source("azure", "pub use client::X;\n"),
        source("azure::client", "use super::{error, wire::Compute};\n"),
        // What the test module names is not a dependency.
        source(
            "model",
            "pub struct A;\n\n#[cfg(test)]\nmod tests {\n    use crate::azure::wire;\n}\n",
        ),
    ];
    let edges = graph(&sources);
    assert_eq!(
        edges["azure::error"].keys().collect::<Vec<_>>(),
        ["azure::wire", "model"]
    );
    assert_eq!(
        edges["azure::client"].keys().collect::<Vec<_>>(),
        ["azure::error", "azure::wire"]
    );
    assert!(!edges.contains_key("model"));
    assert_eq!(
        circles(&edges),
        vec![vec!["azure::error".to_owned(), "azure::wire".to_owned()]]
    );
}

/// Which parts each part may name: the one-way house. The engine names nothing outside
/// itself; the Azure client only the engine's vocabulary; the daemon's shell the engine and
/// the client; the simulations the shell; the command line everything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("engine", &["engine"]),
    ("clock", &["clock"]),
    ("azure", &["azure", "engine"]),
    ("agent", &["agent", "engine", "azure", "clock"]),
    ("daemon", &["daemon", "engine", "azure", "clock"]),
    (
        "sim",
        &["sim", "daemon", "agent", "engine", "azure", "clock"],
    ),
    (
        "cli",
        &["cli", "sim", "daemon", "agent", "engine", "azure", "clock"],
    ),
];

/// Every edge from one part to a part it may not name, with the path that makes it.
fn layer_breaks(edges: &Graph) -> Vec<String> {
    let part = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for (from, tos) in edges {
        let allowed = ALLOWED
            .iter()
            .find(|(p, _)| *p == part(from))
            .map_or(&[][..], |(_, a)| *a);
        for (to, path) in tos {
            if !allowed.contains(&part(to).as_str()) {
                out.push(format!("{from} -> {to} ({path})"));
            }
        }
    }
    out
}

#[test]
fn the_parts_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = sources(&src);
    let parts: BTreeSet<String> = sources
        .iter()
        .map(|s| s.module.split("::").next().unwrap_or_default().to_owned())
        .collect();
    for p in &parts {
        assert!(
            ALLOWED.iter().any(|(a, _)| a == p),
            "src/{p} is a part the rules do not know: add it to ALLOWED"
        );
    }
    let breaks = layer_breaks(&graph(&sources));
    assert!(
        breaks.is_empty(),
        "a part names one it may not (see ALLOWED):\n{}",
        breaks.join("\n")
    );
}

#[test]
fn the_layer_check_names_a_wrong_way_edge() {
    let sources = [
        source("engine::pass", "use crate::daemon::store::Intent;\n"),
        source("daemon::store", "use crate::engine::model::Action;\n"),
        source("engine::model", "//! Vocabulary.\n"),
    ];
    let breaks = layer_breaks(&graph(&sources));
    assert_eq!(
        breaks,
        ["engine::pass -> daemon::store (daemon::store::Intent)"]
    );
}
