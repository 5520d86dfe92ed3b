use super::*;

const KEY: u64 = 7;

fn settings() -> StateSettings {
    StateSettings::default()
}

fn check(state: &mut ProviderState, now: u64) -> Verdict {
    state.check(now, KEY, &Budget::default(), &settings(), false)
}

fn fail(state: &mut ProviderState, error: &Error, now: u64) {
    state.record(Report::Failure(error), now, KEY, &settings());
}

#[test]
fn a_long_retry_after_cools_the_provider_until_then() {
    let mut state = ProviderState::default();
    let error =
        Error::new(ErrorKind::RateLimit, "429").with_retry_after(Some(Duration::from_secs(600)));
    fail(&mut state, &error, 1_000);
    let Verdict::Skip(skip) = check(&mut state, 2_000) else {
        panic!("expected a skip");
    };
    assert_eq!(skip.until_ms, Some(601_000));
    assert_eq!(skip.to_string(), "cooling until 00:10:01 (Retry-After)");
    assert_eq!(check(&mut state, 601_000), Verdict::Go);
    // A short hint is retried within the call, not remembered.
    let mut state = ProviderState::default();
    let short =
        Error::new(ErrorKind::RateLimit, "429").with_retry_after(Some(Duration::from_secs(1)));
    fail(&mut state, &short, 1_000);
    assert_eq!(check(&mut state, 1_001), Verdict::Go);
}

#[test]
fn a_quota_error_without_reset_cools_for_the_configured_time() {
    let mut state = ProviderState::default();
    fail(
        &mut state,
        &Error::new(ErrorKind::QuotaExhausted, "no credits"),
        0,
    );
    assert!(matches!(check(&mut state, 3_599_999), Verdict::Skip(_)));
    assert_eq!(check(&mut state, 3_600_000), Verdict::Go);
}

#[test]
fn the_breaker_opens_probes_once_and_closes_on_success() {
    let mut state = ProviderState::default();
    let down = Error::new(ErrorKind::ServerError, "500");
    // A request's own fault does not count.
    fail(&mut state, &Error::new(ErrorKind::InvalidRequest, "400"), 0);
    fail(&mut state, &down, 0);
    fail(&mut state, &down, 0);
    assert_eq!(check(&mut state, 1), Verdict::Go);
    fail(&mut state, &down, 1);
    let Verdict::Skip(skip) = check(&mut state, 2) else {
        panic!("expected the breaker open");
    };
    assert_eq!(skip.reason, SkipReason::CircuitOpen);
    assert_eq!(skip.until_ms, Some(30_001));
    // After the cooldown: exactly one probe.
    assert_eq!(check(&mut state, 30_001), Verdict::Probe);
    assert!(matches!(check(&mut state, 30_002), Verdict::Skip(_)));
    // The probe fails: open again, for twice as long.
    fail(&mut state, &down, 30_010);
    assert_eq!(state.open_until_ms, Some(90_010));
    assert_eq!(check(&mut state, 90_010), Verdict::Probe);
    state.record(Report::Success, 90_020, KEY, &settings());
    assert_eq!(state.breaker_state(90_020), "closed");
    assert_eq!(check(&mut state, 90_021), Verdict::Go);
}

#[test]
fn a_fully_open_chain_forces_one_probe() {
    let mut state = ProviderState::default();
    let down = Error::new(ErrorKind::Timeout, "slow");
    for _ in 0..3 {
        fail(&mut state, &down, 0);
    }
    let forced = state.check(1, KEY, &Budget::default(), &settings(), true);
    assert_eq!(forced, Verdict::Probe);
    assert!(matches!(
        state.check(2, KEY, &Budget::default(), &settings(), true),
        Verdict::Skip(_)
    ));
}

#[test]
fn an_auth_failure_disables_the_key_until_it_changes() {
    let mut state = ProviderState::default();
    fail(&mut state, &Error::new(ErrorKind::Auth, "401"), 0);
    let Verdict::Skip(skip) = check(&mut state, 1_000_000_000) else {
        panic!("expected the key disabled");
    };
    assert_eq!(skip.reason, SkipReason::AuthFailed);
    let other = state.check(1, KEY + 1, &Budget::default(), &settings(), false);
    assert_eq!(other, Verdict::Go);
    assert_ne!(
        fingerprint(Some("canary-key-0000-DO-NOT-LEAK")),
        fingerprint(Some("canary-key-0001"))
    );
}

#[test]
fn a_key_fingerprint_is_the_start_of_its_sha256_in_every_build() {
    // SHA-256("abc") = ba7816bf 8f01cfea 414140de … (FIPS 180-2, appendix B.1).
    assert_eq!(fingerprint(Some("abc")), 0xba78_16bf_8f01_cfea);
    assert_eq!(fingerprint(None), 0);
}

#[test]
fn budgets_count_requests_and_tokens_per_window() {
    let budget = Budget {
        prefix: "GROQ".to_owned(),
        rpm: Some(2),
        tpd: Some(100),
        ..Budget::default()
    };
    let mut state = ProviderState::default();
    let s = settings();
    assert_eq!(state.check(0, KEY, &budget, &s, false), Verdict::Go);
    assert_eq!(state.check(1, KEY, &budget, &s, false), Verdict::Go);
    let Verdict::Skip(skip) = state.check(2, KEY, &budget, &s, false) else {
        panic!("expected the budget spent");
    };
    assert_eq!(skip.to_string(), "budget (GROQ_RPM=2) until 00:01:00");
    assert_eq!(state.check(60_000, KEY, &budget, &s, false), Verdict::Go);
    state.record(Report::Tokens(100), 60_001, KEY, &s);
    let Verdict::Skip(skip) = state.check(120_000, KEY, &budget, &s, false) else {
        panic!("expected the token budget spent");
    };
    assert_eq!(skip.until_ms, Some(DAY_MS));
}

#[test]
fn skips_serialise_with_reason_and_until() {
    let skip = Skip {
        reason: SkipReason::Cooling {
            source: "Retry-After".to_owned(),
        },
        until_ms: Some(5),
    };
    let json = serde_json::to_value(&skip).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"reason": "cooling", "source": "Retry-After", "until_ms": 5})
    );
}

#[test]
fn the_status_says_the_condition_in_data_and_words_and_the_budget_left() {
    let budget = Budget {
        prefix: "GROQ".into(),
        rpm: Some(30),
        tpd: Some(1_000),
        ..Budget::default()
    };
    let mut state = ProviderState::default();
    let ready = ProviderStatus::of(&state, 0, KEY, Some(&budget));
    assert_eq!(ready.condition, Condition::Ready);
    assert_eq!(ready.summary, "ok");
    assert_eq!(
        ready.budget,
        [
            BudgetLeft {
                name: "RPM",
                limit: 30,
                remaining: 30
            },
            BudgetLeft {
                name: "TPD",
                limit: 1_000,
                remaining: 1_000
            },
        ]
    );
    assert_eq!(check(&mut state, 10), Verdict::Go);
    state.record(Report::Tokens(250), 10, KEY, &settings());
    let error =
        Error::new(ErrorKind::RateLimit, "429").with_retry_after(Some(Duration::from_secs(600)));
    fail(&mut state, &error, 1_000);
    let cooling = ProviderStatus::of(&state, 2_000, KEY, Some(&budget));
    assert_eq!(
        cooling.condition,
        Condition::Cooling {
            until_ms: 601_000,
            source: "Retry-After".into()
        }
    );
    assert_eq!(cooling.summary, state.describe(2_000, KEY));
    assert_eq!(cooling.budget[0].remaining, 29);
    assert_eq!(cooling.budget[1].remaining, 750);
    assert_eq!(
        budget.remaining(&state, 2_000).as_deref(),
        Some("RPM 29/30, TPD 750/1000")
    );
    let json = serde_json::to_value(&cooling).expect("json");
    assert_eq!(json["condition"], "cooling");
    assert_eq!(json["until_ms"], 601_000);
    let down = Error::new(ErrorKind::ServerError, "500");
    let mut broken = ProviderState::default();
    for _ in 0..3 {
        fail(&mut broken, &down, 0);
    }
    let open = broken.condition(1, KEY);
    assert!(matches!(open, Condition::CircuitOpen { until_ms: Some(_) }));
    assert_eq!(open.as_str(), "circuit_open");
    assert_eq!(broken.condition(u64::MAX / 2, KEY), Condition::HalfOpen);
    fail(&mut broken, &Error::new(ErrorKind::Auth, "401"), 2);
    assert_eq!(broken.condition(3, KEY).as_str(), "auth_failed");
    assert!(Condition::NAMES.contains(&broken.condition(3, KEY + 1).as_str()));
}

/// Whether `report` at `now` changes what a check decides, from `state`.
fn decides(state: &ProviderState, report: Report<'_>, now: u64) -> bool {
    let mut next = state.clone();
    next.record(report, now, KEY, &settings());
    next.decisive() != state.decisive()
}

#[test]
fn only_transitions_change_what_a_check_decides() {
    let server = Error::new(ErrorKind::ServerError, "500");
    let mut state = ProviderState::default();
    assert!(!decides(&state, Report::Tokens(40), 1_000));
    assert!(!decides(&state, Report::Success, 1_000));
    // Failures below the breaker's threshold (3) are counted, but a check decides as before.
    assert!(!decides(&state, Report::Failure(&server), 1_000));
    fail(&mut state, &server, 1_000);
    fail(&mut state, &server, 1_000);
    assert!(decides(&state, Report::Failure(&server), 1_000), "opens");
    fail(&mut state, &server, 1_000);
    assert!(decides(&state, Report::Success, 2_000), "closes");
    let cooling =
        Error::new(ErrorKind::RateLimit, "429").with_retry_after(Some(Duration::from_secs(600)));
    assert!(decides(
        &ProviderState::default(),
        Report::Failure(&cooling),
        1_000
    ));
    let auth = Error::new(ErrorKind::Auth, "401");
    assert!(decides(
        &ProviderState::default(),
        Report::Failure(&auth),
        1_000
    ));
    let spent = Report::Spent(Duration::from_secs(30));
    assert!(decides(&ProviderState::default(), spent, 1_000));
}

#[test]
fn a_lasting_skip_is_one_no_other_instance_can_cut_short() {
    let none = Budget::default();
    let lasting =
        |state: &ProviderState, now| state.lasting_skip(now, KEY, &none).map(|s| s.reason);
    assert_eq!(lasting(&ProviderState::default(), 0), None);

    let mut cooling = ProviderState::default();
    let hint = Some(Duration::from_secs(600));
    fail(
        &mut cooling,
        &Error::new(ErrorKind::RateLimit, "429").with_retry_after(hint),
        0,
    );
    assert!(matches!(
        lasting(&cooling, 1),
        Some(SkipReason::Cooling { .. })
    ));
    assert_eq!(lasting(&cooling, 600_000), None, "its time has come");

    let mut open = ProviderState::default();
    for _ in 0..3 {
        fail(&mut open, &Error::new(ErrorKind::ServerError, "500"), 0);
    }
    assert_eq!(lasting(&open, 1), Some(SkipReason::CircuitOpen));
    // The open period over, this copy sees another instance's probe in flight: that probe may
    // close the breaker early, so the store must be asked.
    let mut probing = open.clone();
    assert_eq!(check(&mut probing, 30_000), Verdict::Probe);
    assert!(matches!(
        check(&mut probing.clone(), 30_001),
        Verdict::Skip(_)
    ));
    assert_eq!(lasting(&probing, 30_001), None);

    let mut disabled = ProviderState::default();
    fail(&mut disabled, &Error::new(ErrorKind::Auth, "401"), 0);
    assert_eq!(lasting(&disabled, 1), Some(SkipReason::AuthFailed));
    assert_eq!(disabled.lasting_skip(1, KEY + 1, &none), None, "a new key");

    let budget = Budget {
        prefix: "GROQ".to_owned(),
        rpm: Some(1),
        ..Budget::default()
    };
    let mut spent = ProviderState::default();
    assert_eq!(
        spent.check(0, KEY, &budget, &settings(), false),
        Verdict::Go
    );
    assert!(matches!(
        spent.lasting_skip(1, KEY, &budget).map(|s| s.reason),
        Some(SkipReason::Budget { .. })
    ));
    assert_eq!(
        spent.lasting_skip(60_000, KEY, &budget),
        None,
        "a new minute"
    );
}

#[test]
fn what_happened_earlier_but_arrives_later_does_not_undo_what_happened_since() {
    // A shared store re-applies an instance's pending success on top of another instance's newer
    // failures: the breaker those opened stays open.
    let down = Error::new(ErrorKind::ServerError, "500");
    let mut state = ProviderState::default();
    for at in [10, 11, 12] {
        fail(&mut state, &down, at);
    }
    assert!(state.open_until_ms.is_some());
    state.record(Report::Success, 5, KEY, &settings());
    assert!(
        state.open_until_ms.is_some(),
        "a success from before stays out"
    );
    assert_eq!(state.failures, 3);
    // And a failure from before the latest success counts nothing.
    let mut state = ProviderState::default();
    state.record(Report::Success, 20, KEY, &settings());
    fail(&mut state, &down, 15);
    assert_eq!(state.failures, 0);
    // In order, both count as before.
    fail(&mut state, &down, 21);
    assert_eq!(state.failures, 1);
    state.record(Report::Success, 22, KEY, &settings());
    assert_eq!(state.failures, 0);
}
