//! The layers hold: no import cycle between the crate's top-level modules, and no import
//! that runs up the crate map in `src/lib.rs`.
//!
//! Reads every `.rs` file under `src/` (a folder counts as one module, named for the folder),
//! collects the `crate::…` paths (in `use` lines, grouped `use crate::{a, b::c}` included, and
//! in code) and the `super::…` paths that climb to the crate root, and fails on any cycle,
//! naming it. Not counted: comments (doc links import nothing), string literals, `lib.rs` (it
//! only declares the modules), `main.rs` (another crate, it reaches the library as `igmod::`)
//! and `#[cfg(test)]` items, test-only `mod x;` files included: a test may reach up a layer to
//! set up what it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_cycle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 10,
        "read only {} modules under {}: the reader is broken",
        graph.len(),
        src.display()
    );
    assert!(
        graph.get("config").is_some_and(|d| d.contains("rules")),
        "config's import of rules was not seen: the reader is broken ({graph:?})"
    );
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules of src/ (ARCHITECTURE.md's layers must point down):\n{}",
        cycles
            .iter()
            .map(|c| format!("  {}", c.join(" → ")))
            .chain(components(&graph).iter().map(|c| {
                let inside: Vec<String> = c
                    .iter()
                    .map(|m| {
                        let deps: Vec<&str> = graph[m]
                            .iter()
                            .filter(|d| c.contains(*d))
                            .map(String::as_str)
                            .collect();
                        format!("    {m} → {}", deps.join(", "))
                    })
                    .collect();
                format!(
                    "  its modules and their imports among them:\n{}",
                    inside.join("\n")
                )
            }))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The crate map in `src/lib.rs` lists every module, each above all the modules it imports:
/// the layer list a newcomer reads is the one the code keeps.
#[test]
fn the_crate_map_lists_every_module_above_what_it_imports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs"))
        .unwrap_or_else(|e| panic!("cannot read src/lib.rs: {e}"));
    let order: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(
        listed, declared,
        "src/lib.rs's crate map and its `pub mod` lines name different modules"
    );
    let graph = module_graph(&root.join("src"));
    let place = |m: &str| order.iter().position(|o| o == m);
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(from, deps)| deps.iter().map(move |to| (from, to)))
        .filter(|(from, to)| place(to) < place(from))
        .map(|(from, to)| format!("  {from} → {to}"))
        .collect();
    assert!(
        upward.is_empty(),
        "imports that run up src/lib.rs's crate map (move the definition down, or the module up):\n{}",
        upward.join("\n")
    );
}

#[test]
fn cycle_finder_names_each_cycle_on_a_made_up_graph() {
    let graph = graph_of(&[
        ("daemon", &["scheduler", "config"]),
        ("scheduler", &["poller", "config"]),
        ("poller", &["scheduler", "store"]),
        ("config", &["store", "config"]),
        ("store", &["tokens"]),
        ("tokens", &["config"]),
        ("rules", &[]),
    ]);
    let found = cycles(&graph);
    assert_eq!(
        found,
        vec![
            vec!["config", "store", "tokens", "config"],
            vec!["poller", "scheduler", "poller"],
        ],
        "two cycles, each named from its first module; a module naming itself is no cycle"
    );
    let acyclic = graph_of(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
    assert!(cycles(&acyclic).is_empty());
}

#[test]
fn reader_sees_paths_in_code_and_groups_but_not_comments_strings_or_tests() {
    let text = r##"
//! See [`crate::daemon`]: a doc link imports nothing.
use crate::{config::Config, store::{self, Store}, self as me};
use crate :: graph;
/* crate::budget in a block comment */
fn f() -> Result<(), crate::tokens::TokenError> {
    let s = "crate::lease in a string";
    let r = r#"crate::webhook in a raw string"#;
    let c = '"'; let l: &'static str = "x"; // crate::alerts after a char
    super::metrics::get();
    $crate::timefmt::now();
}
#[cfg(test)]
mod tests {
    use crate::scheduler;
    fn g() { crate::poller::poll(); }
}
#[cfg(test)]
use crate::simulator;
fn after_tests() { crate::rules::check(); }
#[cfg(test)]
mod more;"##;
    let file = read_file_text(text, &["actions".to_string()]);
    assert_eq!(
        file.refs,
        set(&[
            "config", "store", "graph", "tokens", "metrics", "timefmt", "rules"
        ])
    );
    assert_eq!(file.test_mods, vec!["more".to_string()]);
    let nested = read_file_text(
        "use super::super::budget::Budget; use super::payload;",
        &["webhook".into(), "inbox".into()],
    );
    assert_eq!(nested.refs, set(&["budget", "webhook"]));
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn graph_of(edges: &[(&str, &[&str])]) -> Graph {
    edges
        .iter()
        .map(|(from, to)| (from.to_string(), set(to)))
        .collect()
}

/// The import graph of `src/`: every top-level module, with the others it names.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut files = Vec::new();
    collect_rs(src, &mut files);
    files.sort();
    // Files declared `#[cfg(test)] mod x;` are test code too; learn them first.
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut read = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(src).unwrap_or(path);
        let Some(module_path) = module_path_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file = read_file_text(&text, &module_path);
        let dir = if rel.file_name().is_some_and(|n| n == "mod.rs") {
            path.parent().map(Path::to_path_buf)
        } else {
            Some(path.with_extension(""))
        };
        if let Some(dir) = dir {
            for m in &file.test_mods {
                test_only.insert(dir.join(format!("{m}.rs")));
                test_only.insert(dir.join(m).join("mod.rs"));
            }
        }
        read.push((path.clone(), module_path, file));
    }
    for (path, module_path, file) in read {
        let top = module_path[0].clone();
        let deps = graph.entry(top.clone()).or_default();
        if test_only.contains(&path) {
            continue;
        }
        deps.extend(file.refs.into_iter().filter(|d| *d != top));
    }
    // Items of the crate root (`crate::EX_CONFIG`) are no module.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `config/rules.rs` → `[config, rules]`, `config/mod.rs` → `[config]`; `None` for the crate
/// roots `lib.rs` and `main.rs`.
fn module_path_of(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// What one file names.
struct FileRefs {
    /// Top-level modules named through `crate::` (or `super::` up to the root).
    refs: BTreeSet<String>,
    /// `#[cfg(test)] mod x;` declarations: files that hold only test code.
    test_mods: Vec<String>,
}

fn read_file_text(text: &str, module_path: &[String]) -> FileRefs {
    let code = strip_comments_and_literals(text);
    let (code, test_mods) = drop_test_items(&code);
    let tokens = tokenize(&code);
    let mut refs = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let preceded_by_path = i > 0 && tokens[i - 1] == "::";
        if (t == "crate" || t == "$crate")
            && !preceded_by_path
            && tokens.get(i + 1).is_some_and(|n| n == "::")
        {
            i += 2;
            i = read_tree(&tokens, i, &mut refs);
            continue;
        }
        if t == "super" && !preceded_by_path && tokens.get(i + 1).is_some_and(|n| n == "::") {
            let mut depth = module_path.len();
            while tokens.get(i).is_some_and(|t| t == "super")
                && tokens.get(i + 1).is_some_and(|t| t == "::")
            {
                depth = depth.saturating_sub(1);
                i += 2;
            }
            if depth == 0 {
                i = read_tree(&tokens, i, &mut refs);
            } else {
                refs.insert(module_path[0].clone());
            }
            continue;
        }
        i += 1;
    }
    FileRefs { refs, test_mods }
}

/// Reads what follows `crate::`: one name, or a `{…}` group of paths; returns the next index.
fn read_tree(tokens: &[String], mut i: usize, refs: &mut BTreeSet<String>) -> usize {
    match tokens.get(i).map(String::as_str) {
        Some("{") => {
            let mut depth = 0usize;
            let mut first_of_item = true;
            while let Some(t) = tokens.get(i) {
                match t.as_str() {
                    "{" => {
                        depth += 1;
                        first_of_item = depth == 1;
                    }
                    "}" => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    "," if depth == 1 => first_of_item = true,
                    name if first_of_item && depth == 1 => {
                        if is_ident(name) && name != "self" {
                            refs.insert(name.to_string());
                        }
                        first_of_item = false;
                    }
                    _ => {}
                }
                i += 1;
            }
            i
        }
        Some(name) if is_ident(name) => {
            refs.insert(name.to_string());
            i + 1
        }
        _ => i,
    }
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers (with a leading `$`), `::`, and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".into());
            i += 2;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

/// The code with comments, string, byte-string, raw-string and char literals blanked.
fn strip_comments_and_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(k).copied();
        if c[i] == '/' && at(i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == Some('*') {
            let mut depth = 0usize;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if (c[i] == 'r' || (c[i] == 'b' && at(i + 1) == Some('r')))
            && !prev_is_ident(&c, i)
            && {
                let mut k = i + if c[i] == 'b' { 2 } else { 1 };
                while at(k) == Some('#') {
                    k += 1;
                }
                at(k) == Some('"')
            }
        {
            let mut k = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(k) == Some('#') {
                hashes += 1;
                k += 1;
            }
            k += 1; // the opening quote
            loop {
                match at(k) {
                    None => break,
                    Some('"') if (1..=hashes).all(|h| at(k + h) == Some('#')) => {
                        k += 1 + hashes;
                        break;
                    }
                    _ => k += 1,
                }
            }
            i = k;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a, 'static).
            if at(i + 1) == Some('\\') {
                let mut k = i + 2;
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                i = k + 1;
                out.push_str("' '");
            } else if at(i + 2) == Some('\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// Removes every item marked `#[cfg(test)]` (a `{…}` block or up to its `;`); returns the rest
/// and the names of test-only `mod x;` files.
fn drop_test_items(code: &str) -> (String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut test_mods = Vec::new();
    let mut rest = code;
    while let Some(pos) = rest.find(MARK) {
        out.push_str(&rest[..pos]);
        let item = &rest[pos + MARK.len()..];
        let end = match (item.find('{'), item.find(';')) {
            (b, Some(s)) if b.is_none_or(|b| s < b) => {
                let decl: Vec<&str> = item[..s].split_whitespace().collect();
                if let [.., "mod", name] = decl.as_slice() {
                    test_mods.push(name.to_string());
                }
                s + 1
            }
            (Some(b), _) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (k, ch) in item[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, _) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, test_mods)
}

/// The strongly connected components of two or more modules (Tarjan): the modules that sit
/// on one cycle or more.
fn components(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<BTreeSet<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.components.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.components
}

/// Every cycle, one per strongly connected component, named from the component's first
/// module in name order as a closed walk: `a → b → a`.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = components(graph)
        .iter()
        .map(|component| walk_cycle(graph, component))
        .collect();
    found.sort();
    found
}

/// A shortest closed walk inside `component` from its first module back to it (breadth first).
fn walk_cycle(graph: &Graph, component: &BTreeSet<String>) -> Vec<String> {
    let start = component.first().expect("a component has members").clone();
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(&v).into_iter().flatten() {
            if !component.contains(w) || *w == v {
                continue;
            }
            if *w == start {
                let mut walk = vec![start.clone(), v.clone()];
                let mut at = v.clone();
                while let Some(prev) = came_from.get(&at) {
                    walk.push(prev.clone());
                    at = prev.clone();
                }
                walk.reverse();
                return walk;
            }
            if !came_from.contains_key(w) && *w != start {
                came_from.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    vec![start]
}
