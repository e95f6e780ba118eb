//! The execution's log: lines from the `log` interface and the guest's
//! stdout/stderr, under one budget in bytes and one in lines. Every line
//! costs at least [`LINE_OVERHEAD`] bytes, so a flood of empty lines spends
//! the budget as surely as long ones; one line is cut at [`MAX_LINE`] bytes
//! with a marker. Past either budget lines are dropped and counted (the log
//! marked truncated) instead of trapping the guest, and a dropped line costs
//! the host nothing but the count.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use junction_core::record::{LogLine, json_len};
use junction_core::text::truncate_with_marker;

/// Longest line kept: a longer `log` message is cut here (with a marker),
/// and a partial stdout line this long becomes a line of its own.
pub(crate) const MAX_LINE: usize = 8 * 1024;
/// What one line costs against the byte budget besides its text (counted as
/// it is stored, JSON-escaped): its level, its time and the record's
/// framing, so an empty line is not free.
pub(crate) const LINE_OVERHEAD: usize = 64;

#[derive(Default)]
struct Book {
    lines: Vec<LogLine>,
    used: usize,
    truncated: bool,
    dropped: u64,
    stdout_partial: Vec<u8>,
    stderr_partial: Vec<u8>,
}

/// Shared handle to one execution's log.
#[derive(Clone)]
pub(crate) struct LogBook {
    inner: Arc<Mutex<Book>>,
    budget: usize,
    max_lines: usize,
    started: Instant,
}

/// What the log kept, and how much it dropped.
pub(crate) struct TakenLog {
    pub(crate) lines: Vec<LogLine>,
    pub(crate) truncated: bool,
    pub(crate) dropped: u64,
}

impl LogBook {
    pub(crate) fn new(budget: usize, max_lines: usize, started: Instant) -> Self {
        LogBook {
            inner: Arc::new(Mutex::new(Book::default())),
            budget,
            max_lines,
            started,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // A poisoned log is still a log; keep what it has.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Appends a line if the budget allows.
    pub(crate) fn push(&self, level: &str, message: String) {
        let mut book = self.lock();
        self.push_locked(&mut book, level, message);
    }

    fn push_locked(&self, book: &mut Book, level: &str, message: String) {
        let message = cut_line(message);
        let cost = json_len(&message) + LINE_OVERHEAD;
        if book.lines.len() >= self.max_lines || book.used + cost > self.budget {
            book.truncated = true;
            book.dropped += 1;
            return;
        }
        book.used += cost;
        book.lines.push(LogLine {
            level: level.to_owned(),
            message,
            at_ms: self.started.elapsed().as_secs_f64() * 1000.0,
        });
    }

    fn write_stream(&self, stream: &'static str, bytes: &[u8]) {
        let mut book = self.lock();
        if book.lines.len() >= self.max_lines || book.used + LINE_OVERHEAD > self.budget {
            // Full: count the lines without keeping any bytes of them.
            book.truncated = true;
            book.dropped += bytes.iter().filter(|b| **b == b'\n').count() as u64;
            return;
        }
        let mut partial = std::mem::take(if stream == "stdout" {
            &mut book.stdout_partial
        } else {
            &mut book.stderr_partial
        });
        partial.extend_from_slice(bytes);
        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.push_locked(&mut book, stream, text);
        }
        if partial.len() > MAX_LINE {
            let text = String::from_utf8_lossy(&partial).into_owned();
            partial.clear();
            self.push_locked(&mut book, stream, text);
        }
        *(if stream == "stdout" {
            &mut book.stdout_partial
        } else {
            &mut book.stderr_partial
        }) = partial;
    }

    /// The lines so far (with any unterminated stdout/stderr line), and
    /// whether some were dropped.
    pub(crate) fn take(&self) -> TakenLog {
        let mut book = self.lock();
        for stream in ["stdout", "stderr"] {
            let partial = std::mem::take(if stream == "stdout" {
                &mut book.stdout_partial
            } else {
                &mut book.stderr_partial
            });
            if !partial.is_empty() {
                let text = String::from_utf8_lossy(&partial).into_owned();
                self.push_locked(&mut book, stream, text);
            }
        }
        TakenLog {
            lines: std::mem::take(&mut book.lines),
            truncated: book.truncated,
            dropped: book.dropped,
        }
    }

    /// A WASI stdout/stderr that writes into this log.
    pub(crate) fn stream(&self, name: &'static str) -> CapturedStream {
        CapturedStream {
            book: self.clone(),
            name,
        }
    }
}

/// `text` cut to at most [`MAX_LINE`] bytes on a character boundary, with a
/// marker saying how much was cut.
fn cut_line(text: String) -> String {
    truncate_with_marker(text, MAX_LINE)
}

/// The guest's stdout or stderr.
#[derive(Clone)]
pub(crate) struct CapturedStream {
    book: LogBook,
    name: &'static str,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.book.write_stream(self.name, buf);
        // Accept everything: output past the budget is dropped, not an error.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_is_split_into_lines_and_capped() {
        let book = LogBook::new(3 * LINE_OVERHEAD + 7, 100, Instant::now());
        book.write_stream("stdout", b"abc\nde");
        book.write_stream("stdout", b"f\n0123456789\n");
        book.push("info", "x".into());
        let taken = book.take();
        let texts: Vec<_> = taken.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(texts, ["abc", "def", "x"]);
        assert!(taken.truncated);
        assert_eq!(taken.dropped, 1);
    }

    #[test]
    fn empty_lines_spend_the_budget_and_the_line_cap_holds() {
        let book = LogBook::new(64 * 1024, 1000, Instant::now());
        for _ in 0..100_000 {
            book.push("info", String::new());
        }
        book.write_stream("stdout", &b"\n".repeat(5000));
        let taken = book.take();
        assert_eq!(taken.lines.len(), 1000);
        assert_eq!(taken.dropped, 100_000 + 5000 - 1000);

        let by_bytes = LogBook::new(10 * LINE_OVERHEAD, 1000, Instant::now());
        for _ in 0..50 {
            by_bytes.push("info", String::new());
        }
        assert_eq!(by_bytes.take().lines.len(), 10);
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let book = LogBook::new(1024 * 1024, 1000, Instant::now());
        book.push("info", "é".repeat(MAX_LINE));
        let taken = book.take();
        let line = &taken.lines[0].message;
        assert!(line.len() <= MAX_LINE, "{}", line.len());
        assert!(
            line.ends_with(&format!("of {} bytes cut]", 2 * MAX_LINE)),
            "{line}"
        );
        assert_eq!(truncate_with_marker("short".into(), 10), "short");
        assert!(truncate_with_marker("x".repeat(100), 60).len() <= 60);
    }
}
