//! `cargo xtask new-provider` on a copy of the workspace's own wiring files: every list that names the
//! providers gains the new one, in a shape the workspace's checks accept.

use std::path::Path;

use llm_test_support::cargo_features;
use xtask::scaffold::{EDITED, NewProvider, apply, plan};

fn fireworks() -> NewProvider {
    NewProvider {
        id: "fireworks".to_owned(),
        display_name: "Fireworks".to_owned(),
        base_url: "https://api.fireworks.ai/inference/v1".to_owned(),
        key_env: "FIREWORKS_API_KEY".to_owned(),
        model: "accounts/fireworks/models/llama-v3p1-8b-instruct".to_owned(),
        priority: 95,
    }
}

/// A directory holding copies of the files the scaffold edits.
fn workspace_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in EDITED {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("dirs");
        std::fs::copy(xtask::workspace_root().join(file), &to).expect("copy");
    }
    dir
}

fn read(root: &Path, file: &str) -> String {
    std::fs::read_to_string(root.join(file)).expect(file)
}

#[test]
fn wires_the_new_provider_into_every_list() {
    let dir = workspace_copy();
    let root = dir.path();
    let files = plan(root, &fireworks(), &[("groq", 30)]).expect("a plan");
    apply(root, &files).expect("written");

    let cascade = cargo_features(&root.join("crates/llm-cascade/Cargo.toml"));
    assert_eq!(
        cascade["provider-fireworks"],
        ["dep:llm-provider-fireworks"]
    );
    assert!(cascade["all-providers"].contains(&"provider-fireworks".to_owned()));
    let cli = cargo_features(&root.join("crates/llm-cli/Cargo.toml"));
    assert_eq!(
        cli["provider-fireworks"],
        ["llm-cascade/provider-fireworks"]
    );
    assert!(cli["all-providers"].contains(&"provider-fireworks".to_owned()));
    assert!(
        read(root, "crates/llm-cascade/Cargo.toml")
            .contains("\nllm-provider-fireworks = { workspace = true, optional = true }\n")
    );
    assert!(
        read(root, "Cargo.toml")
            .contains("\nllm-provider-fireworks = { path = \"crates/llm-provider-fireworks\" }\n")
    );
    let table = read(root, "crates/llm-cascade/src/providers.rs");
    let row = "    \"fireworks\" => \"provider-fireworks\", llm_provider_fireworks;\n";
    let (before, after) = (
        table.find("\"deepseek\" =>").expect("deepseek row"),
        table.find("\"gemini\" =>").expect("gemini row"),
    );
    let at = table.find(row).expect("the new row");
    assert!(before < at && at < after, "rows stay in id order:\n{table}");

    let lib = read(root, "crates/llm-provider-fireworks/src/lib.rs");
    for part in [
        "pub const ID: &str = \"fireworks\";",
        "key_env: &[\"FIREWORKS_API_KEY\"],",
        "default_base_url: \"https://api.fireworks.ai/inference/v1\",",
        "priority: 95,",
        "compat_provider!(FireworksSpec, Fireworks, FireworksConfig, \"Fireworks\", SPEC);",
    ] {
        assert!(lib.contains(part), "`{part}` missing from:\n{lib}");
    }
    for file in [
        "crates/llm-provider-fireworks/Cargo.toml",
        "crates/llm-provider-fireworks/README.md",
        "crates/llm-provider-fireworks/tests/it/main.rs",
        "crates/llm-provider-fireworks/tests/it/replay.rs",
        "crates/llm-provider-fireworks/tests/it/requests.rs",
        "fixtures/fireworks/README.md",
    ] {
        assert!(root.join(file).is_file(), "{file}");
    }
}

#[test]
fn refuses_what_would_break_the_workspace() {
    let dir = workspace_copy();
    let root = dir.path();
    let taken = [("groq", 30)];
    let cases = [
        (
            NewProvider {
                id: "Fire-works".to_owned(),
                ..fireworks()
            },
            "is not an id",
        ),
        (
            NewProvider {
                id: "groq".to_owned(),
                ..fireworks()
            },
            "already exists",
        ),
        (
            NewProvider {
                priority: 30,
                ..fireworks()
            },
            "priority 30 is taken by `groq`",
        ),
        (
            NewProvider {
                base_url: "api.example".to_owned(),
                ..fireworks()
            },
            "not an http(s) URL",
        ),
        (
            NewProvider {
                key_env: "fireworks key".to_owned(),
                ..fireworks()
            },
            "not a variable name",
        ),
    ];
    for (new, why) in cases {
        let err = plan(root, &new, &taken).expect_err(why);
        assert!(err.contains(why), "{err}");
    }
    apply(root, &plan(root, &fireworks(), &taken).expect("a plan")).expect("written");
    let again = plan(root, &fireworks(), &taken).expect_err("the crate exists");
    assert!(again.contains("already exists"), "{again}");
}
