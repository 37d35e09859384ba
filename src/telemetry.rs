//! Logging: tracing to standard error, as text or JSON, filtered by `RUST_LOG` or the
//! configured level.
//!
//! Lines are not written by the thread that logs them: they are appended to a buffer in
//! memory, and a background thread writes the buffer out every [`FLUSH_INTERVAL`], or
//! sooner once it holds [`FLUSH_AT`] bytes. A request thus never waits for a `write` to a
//! pipe, a file or a journal, and many lines go out in one system call. The order of lines
//! is kept, and [`LogGuard`] writes what is left when the program ends.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// How long a line may wait in memory.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// A buffer this large is written out at once.
const FLUSH_AT: usize = 64 * 1024;
/// A buffer this large makes loggers wait until it is written: memory stays bounded when
/// standard error is slower than the server.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// Installs the global subscriber; call once, from the program's start. Keep the guard
/// until the program ends: dropping it writes the lines still in memory.
pub fn init(level: &str, format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("callsign=info,tower_http=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let buffer = LogBuffer::shared();
    let writer = BufferedStderr(buffer.clone());
    let ansi = std::io::stderr().is_terminal();
    // A subscriber may already be installed (for instance by an embedding program).
    let _ = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .try_init(),
    };
    LogGuard(buffer)
}

/// Writes the buffered log lines when dropped.
#[must_use = "dropping the guard at once would only flush an empty buffer"]
#[derive(Debug)]
pub struct LogGuard(Arc<LogBuffer>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.write_out();
    }
}

/// The lines not yet written, shared by every logging thread and the writer thread.
#[derive(Debug, Default)]
struct LogBuffer {
    pending: Mutex<Vec<u8>>,
    /// Wakes the writer thread early when the buffer is large.
    filled: Condvar,
    /// Wakes loggers waiting for room.
    drained: Condvar,
    /// Held while a chunk is written, so that chunks leave in the order they were taken.
    out: Mutex<Vec<u8>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves only bytes behind: keep using them.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogBuffer {
    /// The one buffer of the process, with its writer thread started on first use.
    fn shared() -> Arc<LogBuffer> {
        static SHARED: OnceLock<Arc<LogBuffer>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let buffer = Arc::new(LogBuffer::default());
                let background = buffer.clone();
                let spawned = std::thread::Builder::new()
                    .name("log-writer".into())
                    .spawn(move || background.run());
                if spawned.is_err() {
                    // Without the thread, a full buffer is written by the logger that finds
                    // it full (see `append`), and the rest at exit.
                    eprintln!("warning: cannot start the log writer thread");
                }
                buffer
            })
            .clone()
    }

    fn append(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        while pending.len() >= MAX_PENDING {
            self.filled.notify_one();
            let (guard, timeout) = self
                .drained
                .wait_timeout(pending, FLUSH_INTERVAL * 10)
                .unwrap_or_else(|e| e.into_inner());
            pending = guard;
            if timeout.timed_out() {
                // No writer thread is emptying the buffer: write it here.
                drop(pending);
                self.write_out();
                pending = lock(&self.pending);
            }
        }
        pending.extend_from_slice(line);
        if pending.len() >= FLUSH_AT {
            self.filled.notify_one();
        }
    }

    fn run(&self) {
        loop {
            {
                let pending = lock(&self.pending);
                if pending.len() < FLUSH_AT {
                    let _ = self.filled.wait_timeout(pending, FLUSH_INTERVAL);
                }
            }
            self.write_out();
        }
    }

    /// Takes what is pending and writes it, after any chunk taken before it.
    fn write_out(&self) {
        let mut chunk = lock(&self.out);
        {
            let mut pending = lock(&self.pending);
            if pending.is_empty() {
                return;
            }
            // Swap buffers, so that both keep their capacity.
            std::mem::swap(&mut *pending, &mut *chunk);
        }
        self.drained.notify_all();
        let mut stderr = std::io::stderr().lock();
        // Nowhere to report a failed log write; the lines are dropped.
        let _ = stderr.write_all(&chunk);
        let _ = stderr.flush();
        chunk.clear();
    }
}

/// The writer the formatting layer writes each event to.
#[derive(Debug, Clone)]
struct BufferedStderr(Arc<LogBuffer>);

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = &'a LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        &self.0
    }
}

impl Write for &LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_memory_and_leave_in_order() {
        let buffer = LogBuffer::default();
        for line in ["one\n", "two\n"] {
            (&buffer).write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(&*lock(&buffer.pending), b"one\ntwo\n");
        buffer.write_out();
        assert!(lock(&buffer.pending).is_empty());
        assert!(lock(&buffer.out).is_empty());
    }
}
