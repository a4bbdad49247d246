//! The source tree's own rules, checked on every run: imports between the modules of one
//! crate run one way (no cycle), and no library file grows past 400 lines of code.
//!
//! A small scanner of `crate::…`, `super::…` and `self::…` paths is enough: each path is
//! resolved to the deepest module file it names, and a re-export (`pub use self::x::Y`)
//! is followed to the module that defines `Y`. A module's `mod` and `pub use` lines are
//! structure, not dependencies. Tools that build rust-analyzer take many minutes here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates checked: their source root and whether they are libraries.
const CRATES: [(&str, bool); 3] = [
    ("crates/core/src", true),
    ("crates/sandbox/src", true),
    ("src", false),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its module path (`rate_limit::store`).
fn modules(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// The code of a file without comments, string literals and `#[cfg(test)]` modules.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        // Drop string literals' contents (paths in messages are not imports); a `'"'`
        // character literal is not a string.
        let chars: Vec<char> = line.chars().collect();
        let mut in_str = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str
                && c == '\''
                && chars.get(i + 1) == Some(&'"')
                && chars.get(i + 2) == Some(&'\'')
            {
                i += 3;
                continue;
            }
            if c == '"' && (i == 0 || chars[i - 1] != '\\') {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            i += 1;
        }
        out.push('\n');
    }
    out
}

/// The paths a module's code names: `use` trees expanded, and inline `crate::a::b` paths.
fn paths(code: &str) -> Vec<(Vec<String>, bool)> {
    let mut out = Vec::new();
    // `use` statements, with one level of braces expanded (what rustfmt writes).
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let starts_item = before.is_empty()
            || before.ends_with('\n')
            || before.ends_with(' ') && before.trim_end().ends_with(['\n', ';', '{', '}', ')'])
            || before.trim_end().ends_with("pub")
            || before.trim_end().ends_with("pub(crate)");
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if starts_item {
            let is_pub =
                before.trim_end().ends_with("pub") || before.trim_end().ends_with("pub(crate)");
            for p in expand(&after[..end]) {
                out.push((p, is_pub));
            }
        }
        rest = &after[end.min(after.len())..];
    }
    // Inline paths: `crate::x::y(...)`, `super::x`.
    for start in ["crate::", "super::"] {
        let mut s = code;
        while let Some(i) = s.find(start) {
            let prev = s[..i].chars().last().unwrap_or(' ');
            let tail = &s[i..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !(prev.is_alphanumeric() || prev == '_' || prev == ':' || prev == '{') {
                let p: Vec<String> = tail[..len]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                out.push((p, false));
            }
            s = &s[i + len.max(1)..];
        }
    }
    out
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    // Spaces only matter around `as`; everything else is joined.
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.replace(" as ", "@as@").replace(' ', "");
    fn go(prefix: &[String], t: &str, out: &mut Vec<Vec<String>>) {
        let t = t.trim_matches(',');
        if t.is_empty() {
            return;
        }
        if let Some(open) = t.find('{') {
            let head: Vec<String> = t[..open]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let inner = &t[open + 1..t.rfind('}').unwrap_or(t.len())];
            let mut full = prefix.to_vec();
            full.extend(head);
            // Split the inner list at top-level commas.
            let (mut depth, mut last) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&full, &inner[last..i], out);
                        last = i + 1;
                    }
                    _ => {}
                }
            }
            go(&full, &inner[last..], out);
        } else {
            let mut full = prefix.to_vec();
            let t = t.split("@as@").next().unwrap_or(t);
            full.extend(t.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
            out.push(full);
        }
    }
    let mut out = Vec::new();
    go(&[], &tree, &mut out);
    out
}

/// Resolves a path used in module `from` to a path from the crate root.
fn absolute(from: &str, path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").map(str::to_owned).collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module an absolute path lands in: its deepest prefix that is a module file, with
/// re-exports followed to the module that defines the item.
fn target(
    path: &[String],
    mods: &BTreeMap<String, PathBuf>,
    reexports: &BTreeMap<(String, String), Vec<String>>,
    depth: u32,
) -> Option<String> {
    for n in (0..=path.len()).rev() {
        let m = path[..n].join("::");
        if mods.contains_key(&m) {
            if let (Some(item), true) = (path.get(n), depth < 8) {
                if let Some(to) = reexports.get(&(m.clone(), item.clone())) {
                    let mut next = to.clone();
                    next.extend(path[n + 1..].iter().cloned());
                    if let Some(t) = target(&next, mods, reexports, depth + 1) {
                        return Some(t);
                    }
                }
            }
            return Some(m);
        }
    }
    None
}

/// The dependency edges between the modules of one crate.
fn edges(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(dir);
    let codes: BTreeMap<String, String> = mods
        .iter()
        .map(|(m, p)| (m.clone(), code(&std::fs::read_to_string(p).unwrap())))
        .collect();
    // `pub use self::x::Y` in module m: (m, Y) → the absolute path of Y.
    let mut reexports = BTreeMap::new();
    for (m, c) in &codes {
        for (p, is_pub) in paths(c) {
            if is_pub {
                if let (Some(abs), Some(name)) = (absolute(m, &p), p.last()) {
                    reexports.insert((m.clone(), name.clone()), abs);
                }
            }
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, c) in &codes {
        for (p, is_pub) in paths(c) {
            if is_pub {
                continue;
            }
            let Some(abs) = absolute(m, &p) else { continue };
            if let Some(t) = target(&abs, &mods, &reexports, 0) {
                if &t != m {
                    out.entry(m.clone()).or_default().insert(t);
                }
            }
        }
    }
    out
}

/// One cycle per strongly connected component with more than one module.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().chain(edges.values().flatten()).collect();
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in nodes {
        if done.contains(n) {
            continue;
        }
        let from_n = reach(n);
        if !from_n.contains(n) {
            continue;
        }
        let scc: Vec<String> = from_n
            .iter()
            .filter(|m| reach(m).contains(n))
            .cloned()
            .collect();
        done.extend(scc.iter().cloned());
        out.push(scc);
    }
    out
}

#[test]
fn imports_between_modules_run_one_way() {
    let mut found = Vec::new();
    for (dir, _) in CRATES {
        let e = edges(&root().join(dir));
        for scc in cycles(&e) {
            let detail: Vec<String> = scc
                .iter()
                .map(|m| {
                    let to: Vec<&String> = e[m].iter().filter(|t| scc.contains(t)).collect();
                    format!("{m} -> {to:?}")
                })
                .collect();
            found.push(format!("{dir}: {}", detail.join("; ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_scanner_sees_a_cycle_and_follows_reexports() {
    assert_eq!(
        expand("crate::a::{B as C, d::{e, f}}"),
        vec![
            vec!["crate", "a", "B"],
            vec!["crate", "a", "d", "e"],
            vec!["crate", "a", "d", "f"]
        ]
    );
    let dir = std::env::temp_dir().join(format!("wa-verify-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "mod a;\nmod b;\npub use self::b::Thing;\n",
    )
    .unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::Thing;\n").unwrap();
    std::fs::write(dir.join("b/mod.rs"), "mod c;\npub use self::c::Thing;\n").unwrap();
    std::fs::write(
        dir.join("b/c.rs"),
        "pub struct Thing;\nfn f() { crate::a::g(); }\n",
    )
    .unwrap();
    let e = edges(&dir);
    assert!(e["a"].contains("b::c"), "the re-export is followed: {e:?}");
    let c = cycles(&e);
    assert_eq!(c, vec![vec!["a".to_owned(), "b::c".to_owned()]], "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines of code in a library file: not doc comments, comments or the test module.
#[test]
fn no_library_file_is_over_400_lines_of_code() {
    let mut big = Vec::new();
    for (dir, library) in CRATES {
        if !library {
            continue;
        }
        for path in modules(&root().join(dir)).values() {
            let text = std::fs::read_to_string(path).unwrap();
            let lines = code(&text).lines().filter(|l| !l.trim().is_empty()).count();
            if lines > 400 {
                big.push(format!("{} ({lines} lines of code)", path.display()));
            }
        }
    }
    assert!(
        big.is_empty(),
        "files over 400 lines of code:\n{}",
        big.join("\n")
    );
}
