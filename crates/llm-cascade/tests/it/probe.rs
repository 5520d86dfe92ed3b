//! Probes: concurrent, each bounded by the provider's timeout and the deadline, classified errors,
//! results in the order asked. On tokio's paused clock, so elapsed times are exact.

use std::sync::Arc;
use std::time::Duration;

use llm_cascade::{
    CascadeBuilder, EnvSource, Error, ErrorKind, MapEnv, Provider, ProviderRegistration,
    probe_provider, probe_registrations,
};
use tokio::time::Instant;

use crate::fake::{Build, Fake, Step, fast_config};

#[tokio::test(start_paused = true)]
async fn a_cascade_probes_its_chain_concurrently_in_order() {
    let cascade = CascadeBuilder::new()
        .config(fast_config().with_deadline(Duration::from_secs(10)))
        .provider(Fake::new("up", vec![]))
        .provider(Fake::new("refused", vec![]).probing(Step::Fail(
            ErrorKind::Auth,
            Some(401),
            None,
        )))
        .provider(
            Fake::new("silent", vec![])
                .with_timeout(Duration::from_secs(2))
                .probing(Step::Hang),
        )
        .build();
    let started = Instant::now();
    let probes = cascade.probe().await;
    // Concurrent: the whole probe takes as long as the slowest one, not the sum.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let ids: Vec<&str> = probes.iter().map(|p| p.provider.as_str()).collect();
    assert_eq!(ids, ["up", "refused", "silent"]);

    assert!(probes[0].is_ok() && probes[0].error().is_none());
    let refused = probes[1].error().expect("refused");
    assert_eq!(
        (refused.kind(), refused.status()),
        (ErrorKind::Auth, Some(401))
    );
    let silent = probes[2].error().expect("timed out");
    assert_eq!(silent.kind(), ErrorKind::Timeout);
    assert_eq!(silent.provider(), Some("silent"));
    assert_eq!(
        silent.message(),
        "no answer within 2s (the provider's timeout)"
    );
    assert_eq!(probes[2].elapsed, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_the_timeout_bounds_the_probe_and_says_so() {
    let slow = Fake::new("slow", vec![])
        .with_timeout(Duration::from_secs(30))
        .probing(Step::Hang);
    let probe = probe_provider(&slow, Duration::from_secs(1)).await;
    assert_eq!(probe.elapsed, Duration::from_secs(1));
    let error = probe.error().expect("timed out");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.message().contains("LLM_DEADLINE"), "{error}");
}

fn build_up(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Fake::new("up", vec![])))
}

fn build_down(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Fake::new("down", vec![]).probing(Step::Fail(
        ErrorKind::NotRunning,
        None,
        None,
    ))))
}

fn build_invalid(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Err(Error::config(
        "INVALID_BASE_URL: `ftp://x` is not an http(s) URL",
    ))
}

/// A registration named `id` built by `build`; a cloud one (with a key variable) unless `local`.
const fn registration(id: &'static str, local: bool, build: Build) -> ProviderRegistration {
    ProviderRegistration {
        id,
        display_name: id,
        priority: 1,
        aliases: &[],
        local,
        env_prefix: "TEST",
        key_env: if local {
            &[]
        } else {
            &["KEYED_API_KEY", "KEYED_KEY"]
        },
        default_model: "m",
        default_base_url: "http://127.0.0.1:1",
        build,
    }
}

#[tokio::test(start_paused = true)]
async fn registrations_are_built_and_probed_or_say_what_to_set() {
    let (up, down, invalid, keyed) = (
        registration("up", true, build_up),
        registration("down", true, build_down),
        registration("invalid", true, build_invalid),
        registration("keyed", false, build_up),
    );
    let probes = probe_registrations(
        &[&keyed, &down, &invalid, &up],
        &MapEnv::new(),
        Duration::from_secs(5),
    )
    .await;
    let ids: Vec<&str> = probes.iter().map(|p| p.provider.as_str()).collect();
    assert_eq!(ids, ["keyed", "down", "invalid", "up"]);
    let kinds: Vec<Option<ErrorKind>> = probes.iter().map(|p| p.error().map(Error::kind)).collect();
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::Config),
            Some(ErrorKind::NotRunning),
            Some(ErrorKind::Config),
            None
        ]
    );
    assert_eq!(
        probes[0].error().map(Error::message),
        Some("not configured: set KEYED_API_KEY or KEYED_KEY")
    );
    assert!(
        probes[2]
            .error()
            .is_some_and(|e| e.message().starts_with("INVALID_BASE_URL")),
        "{:?}",
        probes[2]
    );
    // Not built, not probed: no time spent.
    assert_eq!(probes[0].elapsed, Duration::ZERO);

    // With its key set, the cloud provider is built and probed.
    let env = MapEnv::new().with("KEYED_KEY", "canary-key-0000-DO-NOT-LEAK");
    let probes = probe_registrations(&[&keyed], &env, Duration::from_secs(5)).await;
    assert!(probes[0].is_ok(), "{:?}", probes[0]);
}

#[tokio::test(start_paused = true)]
async fn probing_sends_no_chat_and_records_no_attempt() {
    // An empty script: any chat call would panic.
    let fake = Arc::new(Fake::new("up", vec![]));
    let cascade = CascadeBuilder::new().provider_arc(fake.clone()).build();
    assert!(cascade.probe().await.iter().all(|p| p.is_ok()));
    assert_eq!(fake.calls(), 0);
}
