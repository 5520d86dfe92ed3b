//! Where configuration comes from: the process environment, a `.env` file, or a map in tests.
//!
//! Configuration is read through [`EnvSource`] so that tests pass a [`MapEnv`] instead of touching the
//! process environment (which edition 2024 makes `unsafe` to change).

use std::collections::HashMap;
use std::time::Duration;

/// A read-only source of configuration variables.
pub trait EnvSource: Send + Sync {
    /// The raw value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;

    /// The value of `name`, trimmed, if set and not blank.
    fn non_empty(&self, name: &str) -> Option<String> {
        self.var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The first of `names` that is set and not blank, with its name.
    fn first_of(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names
            .iter()
            .find_map(|name| self.non_empty(name).map(|value| (*name, value)))
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
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
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
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
    fn var(&self, name: &str) -> Option<String> {
        self.0.iter().find_map(|layer| layer.var(name))
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
    fn var(&self, name: &str) -> Option<String> {
        self.top.var(name).or_else(|| self.base.var(name))
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
            (overlay.var("A").as_deref(), overlay.var("B").as_deref()),
            (Some("top"), Some("base"))
        );
    }

    #[test]
    fn layers_and_blank_values() {
        let env = LayeredEnv::new()
            .then(MapEnv::new().with("A", "top").with("BLANK", "  "))
            .then(MapEnv::new().with("A", "bottom").with("B", "only-below"));
        assert_eq!(env.var("A").as_deref(), Some("top"));
        assert_eq!(env.var("B").as_deref(), Some("only-below"));
        assert_eq!(env.non_empty("BLANK"), None);
        assert_eq!(
            env.first_of(&["BLANK", "B"]),
            Some(("B", "only-below".to_owned()))
        );
    }
}
