//! The crate's layering, checked: each top-level module may use only the modules of lower
//! layers (`crate::x` from the source text), and no two sibling files of one module use each
//! other in a circle (`super::x`). The order is the one `lib.rs` lists.

/// Top-level modules from the bottom layer up; a module may use those before it.
pub const LAYERS: &[&str] = &[
    "reference",
    "format",
    "stats",
    "panics",
    "provenance",
    "priority",
    "atomic",
    "schema",
    "config",
    "protocol",
    "confusion_matrix",
    "runlog",
    "tensorboard",
    "rundir",
    "mailbox",
    "sweep",
    "model",
    "fused",
    "interchange",
    "nvidia_smi",
    "memory",
    "data",
    "train",
    "frontend",
    "signals",
    "headless",
    "executor",
    "replay",
    "ui",
    "cli",
    "report",
    "evalcmd",
    "sweepcmd",
    "bench",
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

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

    /// The names that follow `prefix` in code (comments skipped): `crate::train::x` gives `train`.
    fn uses(text: &str, prefix: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices(prefix) {
                let before = line[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let name: String =
                    line[at + prefix.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
        names
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let mut files = Vec::new();
        sources(&src(), &mut files);
        let mut upward = Vec::new();
        for file in &files {
            let rel = file.strip_prefix(src()).unwrap();
            let top =
                rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            if ["main", "lib", "layers"].contains(&top.as_str()) {
                continue;
            }
            let level = LAYERS.iter().position(|m| *m == top).unwrap_or_else(|| panic!("{top} is not in LAYERS"));
            for used in uses(&std::fs::read_to_string(file).unwrap(), "crate::") {
                let at = LAYERS.iter().position(|m| *m == used).unwrap_or_else(|| panic!("{used} is not in LAYERS"));
                if at > level {
                    upward.push(format!("{} uses crate::{used}", rel.display()));
                }
            }
        }
        assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
    }

    #[test]
    fn lib_lists_every_module_in_layer_order() {
        let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
        let listed: Vec<&str> = lib
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("pub(crate) mod ")))
            .map(|l| l.split(|c: char| c == ';' || c.is_whitespace()).next().unwrap())
            .collect();
        assert_eq!(listed, LAYERS);
    }

    #[test]
    fn no_two_files_of_a_module_use_each_other_in_a_circle() {
        let mut files = Vec::new();
        sources(&src(), &mut files);
        // Sibling files by folder: `super::x` from a child of a folder names its sibling `x`.
        let mut graphs: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for file in &files {
            let dir = file.parent().unwrap().to_path_buf();
            if dir == src() {
                continue;
            }
            let name = file.file_stem().unwrap().to_string_lossy().to_string();
            let used = uses(&std::fs::read_to_string(file).unwrap(), "super::");
            graphs.entry(dir).or_default().insert(name, used);
        }
        for (dir, graph) in &graphs {
            for (from, used) in graph {
                for to in used.iter().filter(|t| *t != from && graph.contains_key(*t)) {
                    // Is `from` reachable back from `to`?
                    let mut seen = BTreeSet::new();
                    let mut stack = vec![to.clone()];
                    while let Some(n) = stack.pop() {
                        if !seen.insert(n.clone()) {
                            continue;
                        }
                        assert!(n != *from, "{}: {from} and {to} use each other", dir.display());
                        if let Some(next) = graph.get(&n) {
                            stack.extend(next.iter().filter(|m| graph.contains_key(*m) && *m != &n).cloned());
                        }
                    }
                }
            }
        }
    }
}
