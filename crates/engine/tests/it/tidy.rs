//! Tidy checks over the repository's tracked files, in the spirit of rust-analyzer's: every
//! Rust file says what it owns in its first line, the three lists of the desktop's commands
//! agree, no file names a path of the machine it was written on, and links between the docs
//! lead somewhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files git tracks, relative to the repository root.
fn tracked() -> Vec<String> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git runs (the tidy checks read a checkout)");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8(output.stdout)
        .expect("file names are UTF-8")
        .split('\0')
        .filter(|name| !name.is_empty())
        // Deleted from the worktree but not yet from the index.
        .filter(|name| root().join(name).exists())
        .map(str::to_string)
        .collect()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

#[test]
fn every_rust_file_opens_with_a_line_saying_what_it_owns() {
    let missing: Vec<String> = tracked()
        .into_iter()
        .filter(|n| n.ends_with(".rs") && !read(n).starts_with("//!"))
        .collect();
    assert!(missing.is_empty(), "no //! first line: {missing:?}");
}

/// The quoted names between `start` and the next `end` of `text`.
fn quoted_between(text: &str, start: &str, end: &str) -> BTreeSet<String> {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("« {start} » not found"));
    let rest = &text[from + start.len()..];
    let list = &rest[..rest.find(end).expect("end of the list")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_desktop_s_commands_are_the_same_in_its_three_lists() {
    // What tauri-build generates permissions for.
    let built = quoted_between(&read("src-tauri/build.rs"), ".commands(&[", "]");
    // What the app answers.
    let main = read("src-tauri/src/main.rs");
    let from = main.find("generate_handler![").expect("the invoke handler");
    let rest = &main[from + "generate_handler![".len()..];
    let handled: BTreeSet<String> = rest[..rest.find(']').expect("end of the handler")]
        .split(',')
        .map(|path| path.trim())
        .filter(|path| !path.is_empty())
        .map(|path| path.rsplit("::").next().unwrap_or(path).to_string())
        .collect();
    // What the window is allowed to call.
    let config: serde_json::Value =
        serde_json::from_str(&read("tauri.conf.json")).expect("tauri.conf.json is JSON");
    let allowed: BTreeSet<String> = config["app"]["security"]["capabilities"]
        .as_array()
        .expect("capabilities")
        .iter()
        .flat_map(|capability| {
            capability["permissions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|permission| permission.as_str().map(str::to_string))
        .filter_map(|permission| {
            permission
                .strip_prefix("allow-")
                .map(|name| name.replace('-', "_"))
        })
        .collect();

    assert!(!built.is_empty(), "no command found in build.rs");
    assert_eq!(handled, built, "main.rs's handler and build.rs's commands");
    assert_eq!(allowed, built, "tauri.conf.json's permissions and build.rs");
}

#[test]
fn no_tracked_file_names_a_path_of_the_machine_it_was_written_on() {
    // Written joined so this file does not name them itself.
    let machine_paths = [
        ["/", "work/"],
        ["/", "home/"],
        ["/", "root/"],
        ["/", "Users/"],
    ]
    .map(|parts| parts.concat());
    let mut found = Vec::new();
    for name in tracked() {
        let Ok(text) = std::fs::read_to_string(root().join(&name)) else {
            continue; // not text (images)
        };
        for (number, line) in text.lines().enumerate() {
            if let Some(path) = machine_paths.iter().find(|p| line.contains(p.as_str())) {
                found.push(format!("{name}:{}: {path}", number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "absolute paths of a machine (the shared notes are ../shared/ from the repository): {found:#?}"
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor_of(heading.trim_start_matches('#')))
        .collect()
}

/// The targets of the inline links `[text](target)` of a Markdown text.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = markdown;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].trim().to_string());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn links_between_the_docs_lead_to_a_file_and_a_heading_that_exist() {
    let mut broken = Vec::new();
    for name in tracked().iter().filter(|n| n.ends_with(".md")) {
        let text = read(name);
        let dir = Path::new(name).parent().unwrap_or(Path::new(""));
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let linked = if file.is_empty() {
                name.clone()
            } else {
                dir.join(file).display().to_string()
            };
            let path = root().join(&linked);
            if !path.exists() {
                broken.push(format!("{name}: {target} (no file {linked})"));
                continue;
            }
            if let Some(anchor) = anchor
                && linked.ends_with(".md")
                && !anchors(&std::fs::read_to_string(&path).unwrap_or_default()).contains(anchor)
            {
                broken.push(format!("{name}: {target} (no heading #{anchor})"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

#[test]
fn the_tidy_helpers_read_markdown_as_github_does() {
    assert_eq!(anchor_of(" The message"), "the-message");
    assert_eq!(
        anchor_of("Time and chance under the tests' control"),
        "time-and-chance-under-the-tests-control"
    );
    assert_eq!(
        link_targets("see [a](docs/a.md#b) and ![i](x.png)"),
        ["docs/a.md#b", "x.png"]
    );
}
