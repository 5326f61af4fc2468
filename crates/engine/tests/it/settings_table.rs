//! The README's settings table says what the engine's table of settings says: every setting
//! is there with its default, and the README names no setting the relay does not know.

use std::collections::HashMap;
use std::path::Path;

use relay_engine::config::table::SETTINGS;

/// The rows of the README's "Settings" table: setting name → "default" cell.
fn readme_settings() -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md at the repository root");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Settings\n"))
        .expect("a ## Settings section");
    let mut rows = HashMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let key = cells[0].trim_matches('`').to_string();
        assert!(
            rows.insert(key.clone(), cells[1].to_string()).is_none(),
            "{key} has two rows in the README"
        );
    }
    rows
}

#[test]
fn the_readme_lists_every_setting_with_its_default_and_no_other() {
    let readme = readme_settings();
    for spec in SETTINGS {
        let cell = readme
            .get(spec.key)
            .unwrap_or_else(|| panic!("{} is missing from the README's settings", spec.key));
        let default = spec.default.readme_text();
        assert!(
            cell.starts_with(&default),
            "{}: the README says « {cell} », the relay's default is {default}",
            spec.key
        );
    }
    for key in readme.keys() {
        assert!(
            SETTINGS.iter().any(|spec| spec.key == key),
            "the README documents {key}, which the relay does not read"
        );
    }
}
