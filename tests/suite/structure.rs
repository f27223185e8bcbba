//! The layer rules of docs/architecture.md, as a check: no source file imports a module that
//! imports it back, no source file is longer than 500 lines, and a module whose header says it
//! is pure names nothing that does I/O. Run it alone with `cargo test --test suite structure`.
//! (What the compiler enforces on its own: the core crate cannot import the shell.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 500;
/// What a pure module must not name: an async runtime, a client, the network, files.
const IMPURE: &[&str] = &[
    "tokio::",
    "kube::",
    "hyper::",
    "axum::",
    "reqwest::",
    "std::fs",
    "std::net",
    "std::process",
];

/// A crate's sources: (file, its module path), e.g. src/audit/cluster.rs -> [audit, cluster].
fn modules(src: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<PathBuf, Vec<String>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "bin" && name != "fixtures" {
                    walk(&path, &[prefix, &[name]].concat(), out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = match name.as_str() {
                    "mod" | "lib" => prefix.to_vec(),
                    "main" if prefix.is_empty() => continue, // a binary: its own crate
                    _ => [prefix, &[name]].concat(),
                };
                out.insert(path, module);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The code before the unit tests (an inline `mod tests` has a `super` of its own).
fn code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

/// Without comments (line comments are enough: the sources use no block comments).
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::`/`super::`/`self::` path the code names, use trees expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    fn expand(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = tree[..open]
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let (mut depth, mut from) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&inner[from..i], &[prefix, &head].concat(), out);
                        from = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&inner[from..], &[prefix, &head].concat(), out);
        } else {
            let name = tree.split(" as ").next().unwrap_or_default();
            let segs: Vec<String> = name
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self" || prefix.is_empty())
                .map(str::to_owned)
                .collect();
            if !segs.is_empty() || !prefix.is_empty() {
                out.push([prefix, &segs].concat());
            }
        }
    }
    let mut out = Vec::new();
    // `use` items: at the start of an item or a block, `pub` or not; relative ones (`use c::C`
    // in a/mod.rs) are the current module's.
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].trim_end();
        let before = ["pub(crate)", "pub(super)", "pub"]
            .iter()
            .find_map(|p| before.strip_suffix(p))
            .unwrap_or(before)
            .trim_end();
        let item = before.is_empty() || before.ends_with([';', '{', '}', ']']);
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if item {
            let tree = tail[..end].trim();
            if tree.starts_with("crate::")
                || tree.starts_with("super::")
                || tree.starts_with("self::")
            {
                expand(tree, &[], &mut out);
            } else {
                expand(tree, &["self".to_owned()], &mut out);
            }
        }
        rest = &tail[end..];
    }
    // Paths in expressions: crate::a::b(...), super::x::y.
    for root in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(root) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            out.push(
                tail[..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
            rest = &tail[end..];
        }
    }
    out
}

/// The file a path lands in: the longest prefix that is a module of the crate.
fn resolve(
    path: &[String],
    from: &[String],
    is_mod_file: bool,
    files: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<PathBuf> {
    let mut abs: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => from.to_vec(),
        Some("super") => {
            // A file's `super` is its parent module; a mod.rs file *is* its directory's module.
            let mut m = from.to_vec();
            if !is_mod_file || !m.is_empty() {
                m.pop();
            }
            m
        }
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().map(String::as_str) == Some("super") {
        abs.pop();
        rest = &rest[1..];
    }
    abs.extend(rest.iter().cloned());
    (0..=abs.len())
        .rev()
        .find_map(|n| files.get(&abs[..n].to_vec()).cloned())
}

/// (the file, what it imports) for a crate, and the problems of its files on their own.
fn check_crate(src: &Path, problems: &mut Vec<String>) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mods = modules(src);
    let files: BTreeMap<Vec<String>, PathBuf> =
        mods.iter().map(|(f, m)| (m.clone(), f.clone())).collect();
    let mut edges = BTreeMap::new();
    for (file, module) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{}: {lines} lines (at most {MAX_LINES})",
                file.display()
            ));
        }
        let header = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<String>();
        let code = uncommented(code(&text));
        if header.contains("Pure.") {
            for bad in IMPURE {
                if code.contains(bad) {
                    problems.push(format!("{}: says it is pure, names {bad}", file.display()));
                }
            }
        }
        let is_mod_file = matches!(
            file.file_name().and_then(|n| n.to_str()),
            Some("mod.rs" | "lib.rs")
        );
        let targets: BTreeSet<PathBuf> = paths(&code)
            .iter()
            .filter_map(|p| resolve(p, module, is_mod_file, &files))
            .filter(|t| t != file)
            .collect();
        edges.insert(file.clone(), targets);
    }
    edges
}

fn mutual(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<String> {
    let mut out = Vec::new();
    for (a, targets) in edges {
        for b in targets {
            if a < b && edges.get(b).is_some_and(|t| t.contains(a)) {
                out.push(format!(
                    "{} and {} import each other",
                    a.display(),
                    b.display()
                ));
            }
        }
    }
    out
}

#[test]
fn no_file_imports_one_that_imports_it_back_none_is_too_long_pure_ones_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let mut files = 0;
    for src in ["src", "core/src", "testkit/src"] {
        let edges = check_crate(&root.join(src), &mut problems);
        files += edges.len();
        problems.extend(mutual(&edges));
    }
    assert!(files > 80, "the walk found the sources ({files} files)");
    // Tests and programs: the length rule only.
    for dir in ["tests", "core/tests", "testkit/tests", "testkit/src/bin"] {
        for (file, _) in modules(&root.join(dir)) {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES {
                problems.push(format!(
                    "{}: {lines} lines (at most {MAX_LINES})",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_a_cycle_through_a_mod_rs_and_a_use_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    // a/mod.rs re-exports its child's type; the child takes another from its parent.
    std::fs::write(
        src.join("a/mod.rs"),
        "//! A.\npub mod c;\npub use c::C;\npub struct M;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/c.rs"),
        "//! C.\nuse super::{M, super::b::B};\npub struct C;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "//! Pure.\npub struct B;\nfn f() { crate::a::c::g(); std::fs::read(\"x\"); }\n",
    )
    .unwrap();
    let mut problems = Vec::new();
    let edges = check_crate(src, &mut problems);
    let cycles = mutual(&edges);
    assert_eq!(cycles.len(), 2, "{cycles:?} {edges:?}");
    assert!(
        cycles
            .iter()
            .any(|c| c.contains("a/c.rs") && c.contains("a/mod.rs")),
        "{cycles:?}"
    );
    assert!(
        cycles
            .iter()
            .any(|c| c.contains("a/c.rs") && c.contains("b.rs")),
        "{cycles:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("names std::fs")),
        "{problems:?}"
    );
}
