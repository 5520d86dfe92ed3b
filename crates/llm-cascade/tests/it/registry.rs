//! The registry holds exactly the providers whose features are enabled: no registration is lost to
//! the linker, none is duplicated.

#[test]
fn registry_equals_enabled_features() {
    let registry = llm_cascade::registry().expect("no duplicate ids");
    let mut registered = registry.ids();
    registered.sort_unstable();
    let mut enabled = llm_cascade::ENABLED.to_vec();
    enabled.sort_unstable();
    assert_eq!(registered, enabled);
}

#[test]
fn default_order_is_the_priority_order() {
    let registry = llm_cascade::registry().expect("registry");
    let expected: Vec<&str> = llm_cascade::DEFAULT_ORDER
        .iter()
        .copied()
        .filter(|id| llm_cascade::ENABLED.contains(id))
        .collect();
    assert_eq!(registry.ids(), expected);
}
