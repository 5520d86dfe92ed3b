//! Stop sequences over streamed text: text that might begin a stop sequence is held back until it is
//! known not to. Pure.

/// Scans streamed text for the request's stop sequences.
#[derive(Debug, Default)]
pub(crate) struct StopScanner {
    stops: Vec<String>,
    pending: String,
}

/// What a piece of text released.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Text safe to show now.
    pub(crate) text: String,
    /// Whether a stop sequence was reached (the text before it is in `text`, the rest is dropped).
    pub(crate) stopped: bool,
}

impl StopScanner {
    /// A scanner for `stops` (empty ones are ignored).
    pub(crate) fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Adds `piece`; returns what may be shown.
    pub(crate) fn push(&mut self, piece: &str) -> Scan {
        self.pending.push_str(piece);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.pending.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let text = self.pending[..at].to_owned();
            self.pending.clear();
            return Scan {
                text,
                stopped: true,
            };
        }
        let keep = self.held_back();
        let split = self.pending.len() - keep;
        let text = self.pending[..split].to_owned();
        self.pending.drain(..split);
        Scan {
            text,
            stopped: false,
        }
    }

    /// The text held back at the end of the answer.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// The length of the longest end of `pending` that begins some stop sequence.
    fn held_back(&self) -> usize {
        (1..=self.pending.len())
            .rev()
            .filter(|&n| self.pending.is_char_boundary(self.pending.len() - n))
            .find(|&n| {
                let tail = &self.pending[self.pending.len() - n..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(stops: &[&str]) -> StopScanner {
        StopScanner::new(&stops.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn without_stops_everything_passes_at_once() {
        let mut s = scanner(&[]);
        assert_eq!(s.push("abc").text, "abc");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn a_stop_split_across_pieces_is_found_and_not_shown() {
        let mut s = scanner(&["END"]);
        assert_eq!(s.push("one E").text, "one ");
        let scan = s.push("ND two");
        assert_eq!(
            scan,
            Scan {
                text: String::new(),
                stopped: true
            }
        );
    }

    #[test]
    fn held_text_is_released_when_it_cannot_start_a_stop() {
        let mut s = scanner(&["END"]);
        assert_eq!(s.push("an E").text, "an ");
        assert_eq!(s.push("gg").text, "Egg");
        assert_eq!(s.push(" E").text, " ");
        assert_eq!(s.finish(), "E");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        let mut s = scanner(&["\n\n", "b"]);
        let scan = s.push("ab\n\nc");
        assert_eq!(scan.text, "a");
        assert!(scan.stopped);
    }

    #[test]
    fn multibyte_text_is_held_on_char_boundaries() {
        let mut s = scanner(&["é!"]);
        assert_eq!(s.push("café").text, "caf");
        let scan = s.push("!");
        assert!(scan.stopped);
        assert_eq!(scan.text, "");
    }
}
