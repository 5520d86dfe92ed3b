//! Choosing the chain for one call: `Cascade::restricted` (exactly the named providers, in the
//! order named) and `Cascade::from_env_pinned` (one provider or the full chain).

use std::sync::{Arc, Mutex};

use llm_cascade::{
    Cascade, CascadeBuilder, CascadeEvent, ChatRequest, EnvSource, Error, ErrorKind,
    KNOWN_PROVIDERS, MapEnv, Provider, ProviderRegistration, Registry,
};

use crate::fake::{Build, Fake, Step, fast_config};

fn ids(cascade: &Cascade) -> Vec<&str> {
    cascade.providers().iter().map(|p| p.id()).collect()
}

fn three() -> Cascade {
    CascadeBuilder::new()
        .config(fast_config())
        .provider(Fake::new("a", vec![]))
        .provider(Fake::new(
            "b",
            vec![Step::Fail(ErrorKind::Auth, Some(401), None)],
        ))
        .provider(Fake::new("c", vec![Step::Reply("from c")]))
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_restricted_chain_tries_exactly_the_named_providers_in_that_order() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let cascade = three().with_observer(Arc::new(move |e: &CascadeEvent| {
        if let CascadeEvent::AttemptStarted { provider, .. } = e {
            seen.lock().expect("lock").push(provider.clone());
        }
    }));
    let restricted = cascade.restricted(&[" B", "c", "b"]).expect("restricted");
    assert_eq!(ids(&restricted), ["b", "c"]);
    // The original chain is untouched.
    assert_eq!(ids(&cascade), ["a", "b", "c"]);

    let answer = restricted
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("c answers");
    assert_eq!(answer.text(), "from c");
    let tried: Vec<&str> = answer
        .attempts
        .iter()
        .map(|a| a.provider.as_str())
        .collect();
    assert_eq!(tried, ["b", "c"]);
    // The observers came along.
    assert_eq!(*events.lock().expect("lock"), ["b", "c"]);
}

#[test]
fn a_name_outside_a_builder_chain_is_an_error_listing_the_chain() {
    let error = three().restricted(&["a", "gpt5"]).expect_err("unknown");
    assert_eq!(error.kind(), ErrorKind::Config);
    assert_eq!(
        error.message(),
        "unknown provider `gpt5`; this chain has: a, b, c"
    );
}

#[tokio::test(start_paused = true)]
async fn no_names_give_an_empty_chain_whose_calls_say_how_to_configure() {
    let empty = three().restricted(&[]).expect("empty");
    assert!(empty.providers().is_empty());
    let report = empty
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("no provider");
    assert_eq!(report.kind, ErrorKind::Config);
    assert!(report.attempts.is_empty());
}

#[test]
fn without_fallback_only_the_first_named_provider_is_kept() {
    let cascade = CascadeBuilder::new()
        .config(fast_config().with_auto_fallback(false))
        .provider(Fake::new("a", vec![]))
        .provider(Fake::new("b", vec![]))
        .build();
    assert_eq!(ids(&cascade.restricted(&["b", "a"]).expect("b")), ["b"]);
}

fn build_a(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Fake::new("a", vec![])))
}

fn build_b(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Fake::new("b", vec![])))
}

fn build_c(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Fake::new("c", vec![])))
}

fn build_invalid(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Err(Error::config("D_BASE_URL: `ftp://x` is not an http(s) URL"))
}

const fn registration(id: &'static str, priority: u16, build: Build) -> ProviderRegistration {
    ProviderRegistration {
        id,
        display_name: id,
        priority,
        aliases: &[],
        local: true,
        env_prefix: "TEST",
        key_env: &[],
        default_model: "m",
        default_base_url: "http://127.0.0.1:1",
        build,
    }
}

/// `a` and `b` (local), `c` (needs `C_API_KEY`), `d` (configured, invalid settings).
fn registry() -> Registry {
    Registry::from_registrations([
        registration("a", 1, build_a),
        ProviderRegistration {
            aliases: &["bee"],
            ..registration("b", 2, build_b)
        },
        ProviderRegistration {
            local: false,
            key_env: &["C_API_KEY"],
            ..registration("c", 3, build_c)
        },
        registration("d", 4, build_invalid),
    ])
    .expect("registry")
}

fn restricted_error(cascade: &Cascade, name: &str) -> Error {
    let error = cascade.restricted(&[name]).expect_err(name);
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    error
}

#[test]
fn an_env_chain_may_be_restricted_to_any_configured_provider_the_order_leaves_out() {
    let registry = registry();
    // The order names only `a`: `d`'s invalid settings are not met.
    let env = MapEnv::new().with("LLM_FALLBACK_ORDER", "a");
    let cascade = Cascade::from_registry(&env, &registry, None).expect("builds");
    assert_eq!(ids(&cascade), ["a"]);
    assert_eq!(
        ids(&cascade.restricted(&["BEE", "a"]).expect("b, a")),
        ["b", "a"]
    );

    let error = restricted_error(&cascade, "c");
    assert_eq!(error.message(), "c is not configured: set C_API_KEY");
    assert_eq!(error.provider(), Some("c"));
    let error = restricted_error(&cascade, "d");
    assert_eq!(
        error.message(),
        "D_BASE_URL: `ftp://x` is not an http(s) URL"
    );
    let error = restricted_error(&cascade, "gpt5");
    assert!(
        error
            .message()
            .starts_with("unknown provider `gpt5`; valid ids are: a, b, c, d"),
        "{error}"
    );
    // A provider of the workspace that this registry does not have names its cargo feature.
    let known = KNOWN_PROVIDERS
        .first()
        .expect("the workspace has providers");
    let error = restricted_error(&cascade, known.id);
    assert!(
        error.message().contains("not compiled into this build")
            && error.message().contains(known.feature),
        "{error}"
    );

    // Once its key is set, `c` can be named.
    let env = env.with("C_API_KEY", "canary-key-0000-DO-NOT-LEAK");
    let cascade = Cascade::from_registry(&env, &registry, None).expect("builds");
    assert_eq!(ids(&cascade.restricted(&["c"]).expect("c")), ["c"]);
}

#[test]
fn pinned_or_full_chain_comes_from_one_constructor() {
    let env = MapEnv::new();
    let full = Cascade::from_env_pinned(&env, None);
    let plain = Cascade::from_env_source(&env);
    assert_eq!(
        full.as_ref().map(ids).map_err(Error::message),
        plain.as_ref().map(ids).map_err(Error::message)
    );
    let error = Cascade::from_env_pinned(&env, Some("gpt5")).expect_err("unknown");
    assert!(error.message().contains("`gpt5`"), "{error}");

    let registry = llm_cascade::registry().expect("registry");
    // Any compiled-in provider, its key set (a canary) when it needs one.
    if let Some(first) = registry.iter().last() {
        let env = first.key_env.first().map_or_else(MapEnv::new, |key| {
            MapEnv::new().with(*key, "canary-key-0000-DO-NOT-LEAK")
        });
        let pinned =
            Cascade::from_env_pinned(&env, Some(&first.id.to_uppercase())).expect("pinned");
        assert_eq!(ids(&pinned), [first.id]);
    }
}
