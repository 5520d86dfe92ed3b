//! Splitting a byte stream into lines, with a cap on line length; the base of SSE and NDJSON decoding.
//!
//! Sans-IO: push chunks as they arrive, take the complete lines out. Lines end with `\n` or `\r\n`.

use llm_core::{Error, ErrorKind};

/// The longest line we accept (1 MiB): a server that never ends its line is an error, not a memory leak.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Accumulates bytes and hands out complete lines.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
    /// A bad line met after good ones in the same chunk: reported by the next call, so the good lines
    /// before it are handed out whether or not the bad one arrived in the same chunk.
    deferred: Option<Error>,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `chunk` and returns the lines it completed, without their line endings.
    ///
    /// Lines before a bad one are returned first and the error comes with the next call (push or
    /// finish): where a chunk boundary falls never changes what a reader sees.
    ///
    /// # Errors
    /// A validation error when a line exceeds [`MAX_LINE_BYTES`] or is not UTF-8.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, Error> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset;
            let line = self.pending[start..end]
                .strip_suffix(b"\r")
                .unwrap_or(&self.pending[start..end]);
            match utf8_line(line) {
                Ok(line) => lines.push(line),
                Err(error) if lines.is_empty() => return Err(error),
                Err(error) => {
                    self.deferred = Some(error);
                    self.pending.clear();
                    return Ok(lines);
                }
            }
            start = end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(Error::new(
                ErrorKind::MalformedAnswer,
                format!(
                    "stream line exceeds {} KiB without ending",
                    MAX_LINE_BYTES / 1024
                ),
            ));
        }
        Ok(lines)
    }

    /// The unfinished last line at the end of the stream, if any bytes are left.
    ///
    /// # Errors
    /// A validation error when the rest is not UTF-8.
    pub fn finish(&mut self) -> Result<Option<String>, Error> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        if self.pending.iter().all(u8::is_ascii_whitespace) {
            self.pending.clear();
            return Ok(None);
        }
        let rest = std::mem::take(&mut self.pending);
        utf8_line(rest.strip_suffix(b"\r").unwrap_or(&rest)).map(Some)
    }
}

fn utf8_line(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        Error::new(
            ErrorKind::MalformedAnswer,
            "stream contains a line that is not UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_crlf() {
        let mut buffer = LineBuffer::new();
        assert_eq!(
            buffer.push(b"{\"a\":1}\r\n{\"b\"").expect("ok"),
            vec!["{\"a\":1}"]
        );
        assert_eq!(buffer.push(b":2}\n\n").expect("ok"), vec!["{\"b\":2}", ""]);
        assert_eq!(buffer.push(b"tail").expect("ok"), Vec::<String>::new());
        assert_eq!(buffer.finish().expect("ok").as_deref(), Some("tail"));
        assert_eq!(buffer.finish().expect("ok"), None);
    }

    #[test]
    fn multibyte_characters_split_across_chunks_survive() {
        let text = "héllo\n".as_bytes();
        let mut buffer = LineBuffer::new();
        assert!(buffer.push(&text[..2]).expect("ok").is_empty());
        assert_eq!(buffer.push(&text[2..]).expect("ok"), vec!["héllo"]);
    }

    #[test]
    fn good_lines_before_a_bad_one_come_out_however_the_chunks_fall() {
        let bytes = b"data: one\ndata: \xff\ndata: three\n";
        let mut whole = LineBuffer::new();
        assert_eq!(
            whole.push(bytes).expect("good lines first"),
            vec!["data: one"]
        );
        assert_eq!(
            whole.finish().expect_err("then the bad line").kind(),
            ErrorKind::MalformedAnswer
        );

        let mut split = LineBuffer::new();
        assert_eq!(split.push(&bytes[..10]).expect("ok"), vec!["data: one"]);
        assert!(split.push(&bytes[10..]).is_err());
    }

    #[test]
    fn endless_lines_are_an_error() {
        let mut buffer = LineBuffer::new();
        let err = buffer
            .push(&vec![b'x'; MAX_LINE_BYTES + 1])
            .expect_err("too long");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
    }
}
