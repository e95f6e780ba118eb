//! The execution's log: lines from the `log` interface and the guest's
//! stdout/stderr, under one byte budget. Past the budget lines are dropped
//! (and the log marked truncated) instead of trapping the guest.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::record::LogLine;

/// Longest partial stdout line kept before it is cut into a line of its own.
const MAX_LINE: usize = 8 * 1024;

#[derive(Default)]
struct Book {
    lines: Vec<LogLine>,
    used: usize,
    truncated: bool,
    stdout_partial: Vec<u8>,
    stderr_partial: Vec<u8>,
}

/// Shared handle to one execution's log.
#[derive(Clone)]
pub(crate) struct LogBook {
    inner: Arc<Mutex<Book>>,
    budget: usize,
    started: Instant,
}

impl LogBook {
    pub(crate) fn new(budget: usize, started: Instant) -> Self {
        LogBook {
            inner: Arc::new(Mutex::new(Book::default())),
            budget,
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
        if book.used + message.len() > self.budget {
            book.truncated = true;
            return;
        }
        book.used += message.len();
        book.lines.push(LogLine {
            level: level.to_owned(),
            message,
            at_ms: self.started.elapsed().as_secs_f64() * 1000.0,
        });
    }

    fn write_stream(&self, stream: &'static str, bytes: &[u8]) {
        let mut book = self.lock();
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
    pub(crate) fn take(&self) -> (Vec<LogLine>, bool) {
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
        (std::mem::take(&mut book.lines), book.truncated)
    }

    /// A WASI stdout/stderr that writes into this log.
    pub(crate) fn stream(&self, name: &'static str) -> CapturedStream {
        CapturedStream {
            book: self.clone(),
            name,
        }
    }
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
        let book = LogBook::new(10, Instant::now());
        book.write_stream("stdout", b"abc\nde");
        book.write_stream("stdout", b"f\n0123456789\n");
        book.push("info", "x".into());
        let (lines, truncated) = book.take();
        let texts: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(texts, ["abc", "def", "x"]);
        assert!(truncated);
    }
}
