//! The layers of `src/` (listed at the top of `src/lib.rs`): every `crate::…` path in a
//! file must name a module of its own layer or one below. The few upward imports not yet
//! removed are listed in `KNOWN` with the reason; a new one fails this test with its file
//! and line, and so does a listed one that is gone (so the list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, from the bottom; a module may use modules of its own layer and below.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain types and pure helpers", &["model", "links", "supervise", "memory", "templates", "markdown"]),
    ("configuration", &["config"]),
    ("the store", &["store"]),
    ("what the rules use of the process, and documents from the store", &["services", "documents"]),
    ("outgoing messages in no provider's format", &["messages"]),
    ("rules: client actions, commands, enquiries", &["actions"]),
    ("providers: email, chat, webhooks, inbound mail", &["channels"]),
    ("engines: digests, alerts, the outbox", &["digest", "outbox"]),
    ("the application's shared state", &["state"]),
    ("what both HTTP doors share: one error type, shown as JSON or as a page", &["web"]),
    ("HTTP: the client portal, the staff console and the sync API", &["portal", "console", "sync"]),
    ("the server: routes, background tasks, shutdown, and the connection loop", &["app", "serve"]),
    ("commands' helpers: the demo, generated data", &["demo", "gendata"]),
    ("the command line: one file per command", &["cli"]),
];

/// Upward imports that remain, as (from, to) modules, each with why it is still there.
const KNOWN: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The top module a source file belongs to (`src/store/outbox.rs` → `store`), or `None`
/// for the binary's `main.rs`.
fn module_of(path: &Path, src: &Path) -> Option<String> {
    let rel = path.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "main" && name != "lib").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `#[macro_export]` macros stand at the crate root (`crate::on_db`) but belong to the
/// module that defines them: macro name → that module.
fn exported_macros(src: &Path, files: &[std::path::PathBuf]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(file, src) else { continue };
        let text = std::fs::read_to_string(file).expect("source is readable");
        let mut exported = false;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("macro_rules! ").filter(|_| exported) {
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                out.insert(name, module.clone());
            }
            exported = line == "#[macro_export]";
        }
    }
    out
}

/// Every `crate::name` in `text`, with its line number (comments included: a doc link
/// pointing up is a dependency in the reader's head too).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // `$crate::` in macros and `cport::` from outside are not this crate's own paths.
            let before = &rest[..i];
            if !before.ends_with('$') && !name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_import_points_down_or_is_a_known_debt() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    files.sort();
    let macros = exported_macros(&src, &files);
    let mut upward: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let Some(from) = module_of(file, &src) else { continue };
        let Some(from_layer) = layer_of(&from) else {
            unplaced.insert(from.clone());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source is readable");
        for (line, to) in crate_paths(&text) {
            let to = macros.get(&to).cloned().unwrap_or(to);
            if to == from {
                continue;
            }
            let Some(to_layer) = layer_of(&to) else {
                unplaced.insert(to.clone());
                continue;
            };
            if to_layer > from_layer {
                let at = format!("{}:{line}", file.strip_prefix(&src).unwrap().display());
                upward.entry((from.clone(), to)).or_default().push(at);
            }
        }
    }
    assert!(unplaced.is_empty(), "modules in no layer (add them to LAYERS here and in src/lib.rs): {unplaced:?}");
    let known: BTreeSet<(String, String)> = KNOWN.iter().map(|(a, b, _)| (a.to_string(), b.to_string())).collect();
    let new: Vec<String> = upward
        .iter()
        .filter(|(k, _)| !known.contains(*k))
        .map(|((a, b), at)| format!("{a} → {b} at {}", at.join(", ")))
        .collect();
    assert!(new.is_empty(), "imports that point up a layer:\n{}", new.join("\n"));
    let gone: Vec<String> =
        known.iter().filter(|k| !upward.contains_key(*k)).map(|(a, b)| format!("{a} → {b}")).collect();
    assert!(gone.is_empty(), "no longer imported; remove from KNOWN: {}", gone.join(", "));
}

/// The module graph: every module and the modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let macros = exported_macros(&src, &files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(file, &src) else { continue };
        let text = std::fs::read_to_string(file).expect("source is readable");
        let out = graph.entry(from.clone()).or_default();
        for (_, to) in crate_paths(&text) {
            let to = macros.get(&to).cloned().unwrap_or(to);
            if to != from {
                out.insert(to);
            }
        }
    }
    graph
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let graph = module_graph();
    // Depth-first search from every module; a path back to where it started is a cycle.
    for start in graph.keys() {
        let mut stack: Vec<Vec<String>> = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in graph.get(last).into_iter().flatten() {
                if next == start {
                    panic!("import cycle: {} → {start}", path.join(" → "));
                }
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push(p);
                }
            }
        }
    }
}

#[test]
fn the_layer_list_in_lib_rs_is_this_one() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for (what, mods) in LAYERS {
        let line = format!("//! - {}: {what}", mods.join(", "));
        assert!(lib.contains(&line), "src/lib.rs lists the layer `{line}`");
    }
}

/// The README's layout section and the contributors' layout page show the same layers, in
/// the same order, as `src/lib.rs`: a newcomer reads one picture wherever they look.
#[test]
fn the_readme_and_the_layout_page_show_the_same_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let page = std::fs::read_to_string(root.join("docs/src/contributing/layout.md")).unwrap();
    let (mut in_readme, mut in_page) = (0, 0);
    for (what, mods) in LAYERS {
        let line = format!("\n- {}: {what}\n", mods.join(", "));
        let at = readme.find(&line).unwrap_or_else(|| panic!("README.md lists the layer `{}`", line.trim()));
        assert!(at > in_readme, "README.md lists `{}` after the layer below it", line.trim());
        in_readme = at;
        let cell = format!(" | {} |\n", mods.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "));
        let at = page.find(&cell).unwrap_or_else(|| panic!("layout.md has a row for `{}`", cell.trim()));
        assert!(at > in_page, "layout.md lists `{}` after the layer below it", cell.trim());
        in_page = at;
    }
}

#[test]
fn the_checker_sees_an_upward_import() {
    // What the test above relies on: a path written in a file is found with its line.
    let found = crate_paths("use crate::store::Db;\nfn f() { crate::app::AppState::x(); $crate::store::y }\n");
    assert_eq!(found, vec![(1, "store".to_string()), (2, "app".to_string())]);
    assert!(layer_of("app") > layer_of("store"));
}
