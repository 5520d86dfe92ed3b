//! Where configuration comes from: the process environment, a `.env` file, or a map in tests.
//!
//! Configuration is read through [`EnvSource`] so that tests pass a [`MapEnv`] instead of touching the
//! process environment (which edition 2024 makes `unsafe` to change).

use std::collections::HashMap;
use std::env::VarError;
use std::time::Duration;

use crate::Error;

/// A read-only source of configuration variables.
///
/// Reading is fallible: a variable that is set but unreadable (not valid Unicode in the process
/// environment) is a config error naming it, never treated as unset: a silent default would let a
/// different provider answer than the one the user configured.
pub trait EnvSource: Send + Sync {
    /// The raw value of `name`: `Ok(None)` when it is not set.
    ///
    /// # Errors
    /// A config error naming `name` (see [`not_unicode`]) when it is set but cannot be read as text.
    fn var(&self, name: &str) -> Result<Option<String>, Error>;

    /// The value of `name`, trimmed, if set and not blank.
    ///
    /// # Errors
    /// As [`EnvSource::var`].
    fn non_empty(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self
            .var(name)?
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()))
    }

    /// The first of `names` that is set and not blank, with its name.
    ///
    /// # Errors
    /// As [`EnvSource::var`], for the first of `names` that cannot be read (an unreadable variable
    /// is set, so it is not skipped in favour of a later one).
    fn first_of(&self, names: &[&'static str]) -> Result<Option<(&'static str, String)>, Error> {
        for name in names {
            if let Some(value) = self.non_empty(name)? {
                return Ok(Some((*name, value)));
            }
        }
        Ok(None)
    }
}

/// The config error of a variable that is set but is not valid Unicode. Names the variable, never
/// its value (it may be a key).
pub fn not_unicode(name: &str) -> Error {
    Error::config(format!(
        "{name} is set but is not valid UTF-8 text; set it to UTF-8 text or unset it"
    ))
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(not_unicode(name)),
        }
    }
}

/// A map of variables, for tests and for values read from a `.env` file.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(HashMap<String, String>);

impl MapEnv {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one variable.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl EnvSource for MapEnv {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self.0.get(name).cloned())
    }
}

/// Several sources, the first that has a variable wins (e.g. the process environment over `.env`).
#[derive(Default)]
pub struct LayeredEnv(Vec<Box<dyn EnvSource>>);

impl LayeredEnv {
    /// No layers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a layer below the existing ones.
    #[must_use]
    pub fn then(mut self, layer: impl EnvSource + 'static) -> Self {
        self.0.push(Box::new(layer));
        self
    }
}

impl EnvSource for LayeredEnv {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        for layer in &self.0 {
            if let Some(value) = layer.var(name)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }
}

impl std::fmt::Debug for LayeredEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be keys: show only how many layers there are.
        f.debug_struct("LayeredEnv")
            .field("layers", &self.0.len())
            .finish_non_exhaustive()
    }
}

/// Overrides over a borrowed source: variables of `top` win, the rest come from `base`. For commands
/// that adjust a few settings (the order, a base URL) without touching the caller's environment.
#[derive(Clone, Copy)]
pub struct Overlay<'a> {
    top: &'a MapEnv,
    base: &'a dyn EnvSource,
}

impl<'a> Overlay<'a> {
    /// `top` over `base`.
    pub fn new(top: &'a MapEnv, base: &'a dyn EnvSource) -> Self {
        Self { top, base }
    }
}

impl EnvSource for Overlay<'_> {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        match self.top.var(name)? {
            Some(value) => Ok(Some(value)),
            None => self.base.var(name),
        }
    }
}

impl std::fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be keys: show nothing of them.
        f.debug_struct("Overlay").finish_non_exhaustive()
    }
}

/// Parses a duration: a plain number is seconds (`30`, `1.5`); `500ms`, `30s`, `2m` and `1h` are accepted.
///
/// # Errors
/// A message naming the accepted forms when `text` is none of them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{text}` is not a duration (use seconds like `30`, or `500ms`, `30s`, `2m`)"
            ));
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration (use seconds like `30`, or `500ms`, `30s`, `2m`)")
    })?;
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("`{text}` is out of range"))
}

/// Parses a timeout: a [duration](parse_duration) above zero. A zero timeout would fail every attempt
/// at once (or, read as "no limit", wait forever): neither is what anyone setting it meant.
///
/// # Errors
/// A message naming the accepted forms when `text` is not a duration or is zero.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "`{}` is not a usable timeout: it must be above zero (e.g. `30`, `500ms`, `2m`)",
            text.trim()
        ));
    }
    Ok(duration)
}

/// Parses a boolean flag: `true/false`, `1/0`, `yes/no`, `on/off` (any case).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{text}` is not a boolean (use true or false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_accepted_form() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_durations_are_rejected_with_the_accepted_forms() {
        for bad in ["", "fast", "10 parsecs", "-5", "1e400"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains('`'), "{err}");
        }
    }

    #[test]
    fn timeouts_must_be_above_zero() {
        assert_eq!(parse_timeout("1ms"), Ok(Duration::from_millis(1)));
        for zero in ["0", "0s", "0ms", "0.0"] {
            let err = parse_timeout(zero).expect_err(zero);
            assert!(err.contains("above zero"), "{err}");
        }
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("FALSE"), Ok(false));
        assert_eq!(parse_bool("on"), Ok(true));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn overlay_wins_over_its_base() {
        let base = MapEnv::new().with("A", "base").with("B", "base");
        let top = MapEnv::new().with("A", "top");
        let overlay = Overlay::new(&top, &base);
        assert_eq!(
            (
                value(&overlay, "A").as_deref(),
                value(&overlay, "B").as_deref()
            ),
            (Some("top"), Some("base"))
        );
    }

    fn value(env: &dyn EnvSource, name: &str) -> Option<String> {
        env.var(name).expect("readable")
    }

    #[test]
    fn layers_and_blank_values() {
        let env = LayeredEnv::new()
            .then(MapEnv::new().with("A", "top").with("BLANK", "  "))
            .then(MapEnv::new().with("A", "bottom").with("B", "only-below"));
        assert_eq!(value(&env, "A").as_deref(), Some("top"));
        assert_eq!(value(&env, "B").as_deref(), Some("only-below"));
        assert_eq!(env.non_empty("BLANK").expect("readable"), None);
        assert_eq!(
            env.first_of(&["BLANK", "B"]).expect("readable"),
            Some(("B", "only-below".to_owned()))
        );
    }

    /// A source whose `BAD` variable is set but unreadable, as a non-UTF-8 process variable is.
    struct Unreadable;

    impl EnvSource for Unreadable {
        fn var(&self, name: &str) -> Result<Option<String>, Error> {
            match name {
                "BAD" => Err(not_unicode(name)),
                "GOOD" => Ok(Some("canary-key-0000-DO-NOT-LEAK".to_owned())),
                _ => Ok(None),
            }
        }
    }

    #[test]
    fn an_unreadable_variable_is_an_error_through_every_layer() {
        let layered = LayeredEnv::new().then(MapEnv::new()).then(Unreadable);
        let err = layered.non_empty("BAD").expect_err("unreadable");
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.message().starts_with("BAD "), "{err}");
        // An upper layer that sets the variable hides the unreadable one below, as for any value.
        let top = MapEnv::new().with("BAD", "fine");
        assert_eq!(
            value(&Overlay::new(&top, &Unreadable), "BAD").as_deref(),
            Some("fine")
        );
        let err = Overlay::new(&MapEnv::new(), &Unreadable)
            .var("BAD")
            .expect_err("unreadable");
        assert!(err.message().contains("UTF-8"), "{err}");
    }

    #[test]
    fn first_of_never_skips_an_unreadable_variable_for_a_later_one() {
        let err = Unreadable
            .first_of(&["UNSET", "BAD", "GOOD"])
            .expect_err("BAD is set");
        assert!(err.message().starts_with("BAD "), "{err}");
        assert_eq!(
            Unreadable
                .first_of(&["GOOD", "BAD"])
                .expect("GOOD first")
                .map(|(n, _)| n),
            Some("GOOD")
        );
    }
}
