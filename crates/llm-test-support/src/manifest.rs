//! The `[features]` table of a crate's `Cargo.toml`, for tests that check two feature lists agree.

use std::collections::BTreeMap;
use std::path::Path;

/// The features of the manifest at `path`: each name and the quoted entries of its list.
///
/// Reads the plain layout our manifests use (`name = ["a", "b"]`, a list may span lines); it is not
/// a TOML parser.
///
/// # Panics
/// When the file cannot be read or has no `[features]` table (a test helper: the test fails).
pub fn cargo_features(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let start = text
        .find("\n[features]\n")
        .unwrap_or_else(|| panic!("{} has no [features] table", path.display()));
    let table = &text[start + "\n[features]\n".len()..];
    let end = table.find("\n[").unwrap_or(table.len());
    let mut features = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in table[..end].lines() {
        let line = line.split('#').next().unwrap_or_default();
        match (&mut current, line.split_once('=')) {
            (None, Some((name, rest))) => current = Some((name.trim().to_owned(), rest.to_owned())),
            (Some((_, list)), _) => list.push_str(line),
            (None, None) => continue,
        }
        if let Some((name, list)) = current.take_if(|(_, list)| list.contains(']')) {
            features.insert(name, quoted(&list));
        }
    }
    features
}

/// The double-quoted strings of `list`, in order.
fn quoted(list: &str) -> Vec<String> {
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_line_and_multi_line_lists() {
        let dir = std::env::temp_dir().join(format!("manifest-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("Cargo.toml");
        std::fs::write(
            &path,
            "[package]\nname = \"x\"\n\n[features]\ndefault = [\"all\"]\nall = [\n    \"a\", # first\n    \"b\",\n]\na = [\"dep:x-a\"]\nb = []\n\n[dependencies]\nx = \"1\"\n",
        )
        .expect("write");
        let features = cargo_features(&path);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(features.len(), 4, "{features:?}");
        assert_eq!(features["all"], ["a", "b"]);
        assert_eq!(features["a"], ["dep:x-a"]);
        assert!(features["b"].is_empty());
    }
}
