//! The README and docs/ hold together: every relative link reaches a file (and its heading, where
//! one is named), every `resnet-tui ...` command in their code blocks parses with the binary's own
//! argument parser, and `--help` says what the README says.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every document in docs/, the README first.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A markdown line outside code fences, with its inline code spans removed.
fn prose_lines(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            let kept: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
            lines.push(kept);
        }
    }
    lines
}

/// The targets of `[text](target)` and `![alt](target)` links.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// GitHub's anchor for a heading: lowercase, spaces to '-', punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown file's headings, repeated ones numbered as GitHub numbers them.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut anchors = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if in_fence || hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_default();
        anchors.push(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    anchors
}

/// Why a link from a file in `dir` does not resolve, if it does not.
fn broken(dir: &Path, target: &str) -> Option<String> {
    if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let file = if path.is_empty() { None } else { Some(dir.join(path)) };
    if let Some(f) = file.as_ref().filter(|f| !f.exists()) {
        return Some(format!("{target}: no such file ({})", f.display()));
    }
    let anchor = anchor?;
    let file = file.unwrap_or_default();
    let text = std::fs::read_to_string(&file).ok()?;
    if anchors(&text).iter().any(|a| a == anchor) {
        None
    } else {
        Some(format!("{target}: no heading with the anchor #{anchor} in {}", file.display()))
    }
}

/// Every broken relative link of one markdown file.
fn broken_links(file: &Path) -> Vec<String> {
    let dir = file.parent().unwrap();
    let text = read(file);
    link_targets(&text)
        .iter()
        .filter_map(|t| {
            let target = if t.starts_with('#') {
                format!("{}{t}", file.file_name().unwrap().to_str().unwrap())
            } else {
                t.clone()
            };
            broken(dir, &target)
        })
        .map(|why| format!("{}: {why}", file.display()))
        .collect()
}

/// A line of a shell code block split into words: quotes respected, a `#` comment dropped.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quote, mut started) = (None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true
            }
            (None, '#') if !started => break,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => {
                word.push(c);
                started = true
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The argument lists of the `resnet-tui` commands in a markdown text's shell code blocks (a fence
/// with no language, or sh, bash, shell, console): after a `$ ` prompt, environment assignments and
/// `nice -n N`, in each part of a pipeline or `&&` chain; `cargo run --release -- ARGS` counts as
/// the binary with ARGS. Brackets of optional parts are dropped, their contents kept.
fn quoted_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut fence: Option<bool> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(matches!(lang.trim(), "" | "sh" | "bash" | "shell" | "console")),
            };
            continue;
        }
        if fence != Some(true) {
            continue;
        }
        let line = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
        let all = words(line);
        for part in all.split(|w| w == "|" || w == "&&" || w == ";" || w == "||") {
            let mut part: Vec<String> = part.to_vec();
            while part.first().is_some_and(|w| w.contains('=') && !w.starts_with('-')) {
                part.remove(0);
            }
            if part.len() >= 3 && part[0] == "nice" && part[1] == "-n" {
                part.drain(..3);
            }
            let args = match part.first().map(|w| w.as_str()) {
                Some(w) if w == "resnet-tui" || w.ends_with("/resnet-tui") => part[1..].to_vec(),
                Some("cargo") if part.get(1).is_some_and(|w| w == "run") => match part.iter().position(|w| w == "--") {
                    Some(at) => part[at + 1..].to_vec(),
                    None => continue,
                },
                _ => continue,
            };
            let args: Vec<String> = args
                .iter()
                .map(|w| w.trim_start_matches('[').trim_end_matches(']').to_string())
                .filter(|w| !w.is_empty())
                .collect();
            commands.push(args);
        }
    }
    commands
}

/// Whether the binary's argument parser takes these arguments: they are run with `--help`
/// appended, which clap answers with the help (exit 0) only when every argument before it parses.
fn parses(args: &[String]) -> Result<(), String> {
    let mut cmd = bin();
    cmd.args(args).arg("--help");
    let out = output(cmd);
    let said = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && said.contains("Usage:") {
        Ok(())
    } else {
        Err(format!("resnet-tui {}: {}", args.join(" "), stderr(&out).trim()))
    }
}

fn help(args: &[&str]) -> String {
    let mut cmd = bin();
    cmd.args(args).arg("--help");
    let out = output(cmd);
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `Commands:` section of a help text: each command's name and one-line description.
fn help_commands(help: &str) -> Vec<(String, String)> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let l = l.trim();
            let (name, about) = l.split_once(' ')?;
            (name != "help").then(|| (name.to_string(), about.trim().to_string()))
        })
        .collect()
}

/// The README's table of commands: each `resnet-tui NAME` row's name and description.
fn readme_commands(readme: &str) -> Vec<(String, String)> {
    readme
        .lines()
        .skip_while(|l| *l != "## What you can do")
        .take_while(|l| !l.starts_with("## ") || *l == "## What you can do")
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split(" | ").map(str::trim).collect();
            let name = cells.first()?.strip_prefix("`resnet-tui ")?.strip_suffix('`')?;
            Some((name.to_string(), cells.get(1)?.to_string()))
        })
        .collect()
}

#[test]
fn every_relative_link_reaches_a_file_and_its_heading() {
    let mut broken = Vec::new();
    let mut links = 0;
    for doc in documents() {
        links += link_targets(&read(&doc)).len();
        broken.extend(broken_links(&doc));
    }
    assert!(links >= 20, "only {links} links found: is the link reader broken?");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_quoted_command_parses_with_the_real_argument_parser() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let commands = quoted_commands(&read(&doc));
        if doc.ends_with("README.md") {
            assert!(commands.len() >= 3, "the README's code blocks quote only {} commands", commands.len());
        }
        for args in commands {
            checked += 1;
            if let Err(why) = parses(&args) {
                failures.push(format!("{}: {why}", doc.display()));
            }
        }
    }
    assert!(checked >= 15, "only {checked} commands found in code blocks");
    assert!(failures.is_empty(), "quoted commands the binary refuses:\n{}", failures.join("\n"));
}

#[test]
fn a_misspelt_command_or_link_is_caught() {
    let block = "```sh\nresnet-tui train --deph 20 --data-dir ../shared/cifar10   # a typo\n```\n";
    let commands = quoted_commands(block);
    assert_eq!(commands, vec![vec!["train", "--deph", "20", "--data-dir", "../shared/cifar10"]]);
    assert!(parses(&commands[0]).is_err(), "a misspelt flag passed");
    let refused = |args: &[&str]| parses(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>()).is_err();
    assert!(refused(&["trian"]), "a misspelt subcommand passed");
    assert!(refused(&["summary", "runs/x", "--format", "tabel"]), "a bad value passed");
    assert!(refused(&["sweep", "run", "DIR", "--jobz", "2"]), "a misspelt flag of a nested command passed");
    assert!(!refused(&["train", "--depth", "20", "--data-dir", "../shared/cifar10"]));
    // Not a command block: a screen capture, and a language that is not a shell.
    assert!(quoted_commands("```text\n resnet-tui  runs/table · 4 runs\n```\n").is_empty());
    assert!(quoted_commands("```python\nresnet-tui = 1\n```\n").is_empty());
    // Chains, pipelines, prompts, environment and optional parts.
    let shell = "```\n$ nice -n 19 resnet-tui replay a b\nssh h tail -f x | resnet-tui replay --follow -\n\
                 ./scripts/setup && cargo run --release -- --data-dir d\nBIN=x resnet-tui bench [--json b.json]\n```\n";
    assert_eq!(
        quoted_commands(shell),
        vec![
            vec!["replay", "a", "b"],
            vec!["replay", "--follow", "-"],
            vec!["--data-dir", "d"],
            vec!["bench", "--json", "b.json"]
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.md"), "# A title\n\n## Growing a network: `resume --set`\n").unwrap();
    assert_eq!(broken(dir.path(), "a.md#a-title"), None);
    assert_eq!(broken(dir.path(), "a.md#growing-a-network-resume---set"), None);
    assert!(broken(dir.path(), "a.md#no-such-heading").is_some());
    assert!(broken(dir.path(), "b.md").is_some());
    assert!(broken(dir.path(), "https://example.org/nowhere").is_none());
    assert_eq!(link_targets("see [a](a.md#x) and `[b](b.md)` and ![c](c.png)"), vec!["a.md#x", "c.png"]);
}

#[test]
fn anchors_are_numbered_as_github_numbers_repeated_headings() {
    assert_eq!(
        anchors("# Results\n## Results\n```\n# not a heading\n```\n## Why? It's 8.51 %\n"),
        vec!["results", "results-1", "why-its-851-"]
    );
}

#[test]
fn the_help_and_the_readme_give_the_same_purpose_and_commands() {
    let readme = read(&root().join("README.md"));
    let short = help(&[]).lines().next().unwrap().to_string();
    let mut cmd = bin();
    cmd.arg("-h");
    let purpose = String::from_utf8_lossy(&output(cmd).stdout).lines().next().unwrap().to_string();
    assert!(short.starts_with(&purpose), "--help and -h differ: {short:?} / {purpose:?}");
    let first_paragraph: String = readme.split("\n\n").nth(1).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        first_paragraph.starts_with(&format!("{purpose}.")),
        "the README's first paragraph does not open with the help's purpose, {purpose:?}:\n{first_paragraph}"
    );

    let from_help = help_commands(&help(&[]));
    assert!(from_help.len() >= 10, "{from_help:?}");
    assert_eq!(readme_commands(&readme), from_help, "the README's table of commands and --help differ");
}

#[test]
fn every_subcommands_help_ends_with_a_pointer_to_its_document() {
    let mut paths: Vec<Vec<String>> = help_commands(&help(&[])).into_iter().map(|(n, _)| vec![n]).collect();
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        let text = help(&path.iter().map(String::as_str).collect::<Vec<_>>());
        for (name, _) in help_commands(&text) {
            paths.push([path.clone(), vec![name]].concat());
        }
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let pointer = last.strip_prefix("More: ");
        let pointer = pointer.unwrap_or_else(|| panic!("resnet-tui {} --help ends with {last:?}", path.join(" ")));
        let targets: Vec<&str> = pointer
            .split(|c: char| c.is_whitespace() || c == ';' || c == '(' || c == ')')
            .filter(|w| w.starts_with("docs/"))
            .collect();
        assert!(!targets.is_empty(), "resnet-tui {} --help points nowhere: {last}", path.join(" "));
        for target in targets {
            assert_eq!(broken(&root(), target), None, "resnet-tui {} --help", path.join(" "));
        }
        i += 1;
    }
    assert!(paths.len() >= 15, "{paths:?}");
}
