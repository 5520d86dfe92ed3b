//! The registry holds exactly the providers whose features are enabled: no registration is lost to
//! the linker, none is duplicated. Nothing here names an id: the same tests hold for every feature
//! subset (`.ci/run` also runs them with two providers).

use std::collections::BTreeSet;

use llm_cascade::{ENABLED, KNOWN_PROVIDERS, MapEnv, provider_order, resolve_provider};

#[test]
fn registry_equals_enabled_features() {
    let registry = llm_cascade::registry().expect("no duplicate ids");
    let mut registered = registry.ids();
    registered.sort_unstable();
    let mut enabled = ENABLED.to_vec();
    enabled.sort_unstable();
    assert_eq!(registered, enabled);
}

#[test]
fn the_default_order_is_the_priority_order() {
    let registry = llm_cascade::registry().expect("registry");
    let mut by_priority: Vec<(u16, &str)> = registry.iter().map(|r| (r.priority, r.id)).collect();
    by_priority.sort_unstable();
    let expected: Vec<&str> = by_priority.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        provider_order(&MapEnv::new(), &registry).expect("default order"),
        expected
    );
}

#[test]
fn priorities_and_aliases_are_unambiguous() {
    let registry = llm_cascade::registry().expect("registry");
    let mut names: Vec<&str> = Vec::new();
    let mut priorities: Vec<u16> = Vec::new();
    for registration in registry.iter() {
        names.push(registration.id);
        names.extend(registration.aliases);
        priorities.push(registration.priority);
        for alias in registration.aliases {
            assert_eq!(
                resolve_provider(alias, &registry).ok(),
                Some(registration.id)
            );
            assert_eq!(*alias, alias.to_ascii_lowercase(), "aliases are lower case");
        }
    }
    let (all_names, all_priorities) = (names.len(), priorities.len());
    names.sort_unstable();
    names.dedup();
    priorities.sort_unstable();
    priorities.dedup();
    assert_eq!(names.len(), all_names, "an id or alias names two providers");
    assert_eq!(
        priorities.len(),
        all_priorities,
        "two providers share a priority"
    );
}

#[test]
fn every_provider_not_compiled_in_is_a_config_error_naming_its_feature() {
    let registry = llm_cascade::registry().expect("registry");
    for known in KNOWN_PROVIDERS.iter().filter(|p| !p.compiled_in) {
        let env = MapEnv::new().with("LLM_FALLBACK_ORDER", known.id);
        let err = provider_order(&env, &registry).expect_err(known.id);
        assert!(
            err.message().starts_with("LLM_FALLBACK_ORDER: ")
                && err.message().contains(&format!("`{}`", known.feature)),
            "{err}"
        );
        let err = llm_cascade::Cascade::pinned(&MapEnv::new(), known.id).expect_err(known.id);
        assert!(err.message().contains(known.feature), "{err}");
    }
}

#[test]
fn every_compiled_in_provider_can_be_named() {
    let registry = llm_cascade::registry().expect("registry");
    for known in KNOWN_PROVIDERS.iter().filter(|p| p.compiled_in) {
        assert_eq!(
            resolve_provider(&known.id.to_uppercase(), &registry).ok(),
            Some(known.id)
        );
    }
}

/// The `provider-*` features of `crate_dir`'s manifest, and its `all-providers` list, as sets.
fn provider_features(crate_dir: &str) -> (Features, BTreeSet<String>, BTreeSet<String>) {
    let path = llm_test_support::workspace_root()
        .join(crate_dir)
        .join("Cargo.toml");
    let features = llm_test_support::cargo_features(&path);
    let providers = features
        .keys()
        .filter(|name| name.starts_with("provider-"))
        .cloned()
        .collect();
    let all = features["all-providers"].iter().cloned().collect();
    (features, providers, all)
}

type Features = std::collections::BTreeMap<String, Vec<String>>;

#[test]
fn the_provider_table_and_the_cargo_features_agree() {
    let (features, providers, all) = provider_features("crates/llm-cascade");
    let table: BTreeSet<String> = KNOWN_PROVIDERS
        .iter()
        .map(|p| p.feature.to_owned())
        .collect();
    assert_eq!(
        providers, table,
        "a feature without a table row, or a row without a feature"
    );
    assert_eq!(all, table, "all-providers lists every provider");
    for known in KNOWN_PROVIDERS {
        assert_eq!(
            features[known.feature],
            [format!("dep:llm-provider-{}", known.id)],
            "{}",
            known.feature
        );
    }
}

/// Cargo cannot derive one crate's features from another's: this test is what keeps `llm-cli`'s
/// list a mirror of `llm-cascade`'s.
#[test]
fn llm_cli_features_mirror_llm_cascade() {
    let (cascade, cascade_providers, cascade_all) = provider_features("crates/llm-cascade");
    let (cli, cli_providers, cli_all) = provider_features("crates/llm-cli");
    assert_eq!(cli_providers, cascade_providers);
    assert_eq!(cli_all, cascade_all);
    assert_eq!(cli["default"], cascade["default"]);
    for feature in &cascade_providers {
        let forwarded = format!("llm-cascade/{feature}");
        assert!(
            cli[feature].contains(&forwarded),
            "llm-cli's `{feature}` must enable `{forwarded}`: {:?}",
            cli[feature]
        );
    }
}

#[test]
fn an_empty_registry_says_no_provider_is_compiled_in() {
    let empty = llm_cascade::Registry::default();
    for pin in [None, Some("anything")] {
        let err = llm_cascade::Cascade::from_registry(&MapEnv::new(), &empty, pin)
            .expect_err("nothing to build");
        assert_eq!(err.kind(), llm_cascade::ErrorKind::Config);
        assert!(
            err.message().starts_with("no provider is compiled in: "),
            "{err}"
        );
    }
}
