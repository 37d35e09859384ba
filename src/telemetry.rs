//! Logging: tracing to standard error, as text or JSON, filtered by `RUST_LOG` or the
//! configured level.
//!
//! Lines are not written by the thread that logs them: they are appended to a buffer in
//! memory, and a background thread writes the buffer out every [`FLUSH_INTERVAL`], or
//! sooner once it holds [`FLUSH_AT`] bytes. A request thus never waits for a `write` to a
//! pipe, a file or a journal, and many lines go out in one system call. The order of lines
//! is kept, and [`LogGuard`] writes what is left when the program ends.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

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
        .unwrap_or_else(|_| EnvFilter::new("callsign=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let buffer = LogBuffer::shared();
    let writer = BufferedStderr(buffer.clone());
    let ansi = std::io::stderr().is_terminal();
    // A subscriber may already be installed (for instance by an embedding program); then
    // access lines go to it as events.
    let installed = match format {
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
    if installed.is_ok() {
        let _ = ACCESS.set(AccessSink {
            buffer: buffer.clone(),
            format,
        });
    }
    LogGuard(buffer)
}

/// The target of access lines, for filters: `RUST_LOG=callsign::access=off` silences them.
pub const ACCESS_TARGET: &str = "callsign::access";

/// Where access lines go when [`init`] installed the subscriber.
static ACCESS: OnceLock<AccessSink> = OnceLock::new();

struct AccessSink {
    buffer: Arc<LogBuffer>,
    format: LogFormat,
}

/// One answered request, as its access line says it: never a query string, a header or a
/// body, only what the route was and who was issued what.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub method: &'a str,
    /// The matched route pattern, or `unmatched`.
    pub route: &'a str,
    pub status: u16,
    pub latency: Duration,
    /// The client the token endpoint authenticated.
    pub client_id: Option<&'a str>,
    /// The identifier of the token the token endpoint issued.
    pub jti: Option<&'a str>,
}

/// Logs one access line at info level under [`ACCESS_TARGET`].
///
/// Every request has one, so it is written by hand into the log buffer, in the format the
/// other lines have, rather than through a span and an event of the formatting layer,
/// which cost a third of the server's time on the cheapest requests. The filter still
/// decides whether it is written. Without [`init`]'s subscriber (a test, an embedding
/// program) it is an ordinary event.
pub fn access(line: &Access<'_>) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(sink) = ACCESS.get() else {
        tracing::info!(
            target: ACCESS_TARGET,
            method = line.method,
            route = line.route,
            status = line.status,
            latency_us = duration_micros(line.latency),
            client_id = line.client_id,
            jti = line.jti,
            "request"
        );
        return;
    };
    thread_local! {
        static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
    }
    // A log line is stamped with the wall clock, as every line of the formatting layer is,
    // whatever clock the application runs on.
    #[expect(clippy::disallowed_methods, reason = "log lines carry wall-clock time")]
    let now = SystemTime::now();
    LINE.with_borrow_mut(|bytes| {
        bytes.clear();
        format_access(bytes, sink.format, now, line);
        sink.buffer.append(bytes);
    });
}

fn duration_micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// Formats `line` as the formatting layer formats an info event of [`ACCESS_TARGET`] with
/// the message `request`, in `format`, with a newline.
fn format_access(bytes: &mut Vec<u8>, format: LogFormat, now: SystemTime, line: &Access<'_>) {
    let timestamp = Timestamp(time::OffsetDateTime::from(now));
    let latency = duration_micros(line.latency);
    // Writing to a Vec cannot fail.
    let _ = match format {
        LogFormat::Text => {
            let _ = write!(
                bytes,
                "{timestamp}  INFO {ACCESS_TARGET}: request method={} route={} status={} \
                 latency_us={latency}",
                Plain(line.method),
                Plain(line.route),
                line.status,
            );
            for (name, value) in [("client_id", line.client_id), ("jti", line.jti)] {
                if let Some(value) = value {
                    let _ = write!(bytes, " {name}={}", Plain(value));
                }
            }
            bytes.write_all(b"\n")
        }
        LogFormat::Json => {
            let _ = write!(
                bytes,
                "{{\"timestamp\":\"{timestamp}\",\"level\":\"INFO\",\"fields\":{{\"message\":\"request\",\"method\":"
            );
            let _ = serde_json::to_writer(&mut *bytes, line.method);
            bytes.extend_from_slice(b",\"route\":");
            let _ = serde_json::to_writer(&mut *bytes, line.route);
            let _ = write!(
                bytes,
                ",\"status\":{},\"latency_us\":{latency}",
                line.status
            );
            for (name, value) in [("client_id", line.client_id), ("jti", line.jti)] {
                if let Some(value) = value {
                    let _ = write!(bytes, ",\"{name}\":");
                    let _ = serde_json::to_writer(&mut *bytes, value);
                }
            }
            bytes.write_all(b"},\"target\":\"callsign::access\"}\n")
        }
    };
}

/// RFC 3339 in UTC with microseconds, as the formatting layer writes it.
struct Timestamp(time::OffsetDateTime);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (year, month, day) = self.0.to_calendar_date();
        let (hour, minute, second, micro) = self.0.to_hms_micro();
        write!(
            f,
            "{year:04}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micro:06}Z",
            u8::from(month)
        )
    }
}

/// A value written as it is when it cannot be mistaken for more of the line, quoted and
/// escaped otherwise.
struct Plain<'a>(&'a str);

impl std::fmt::Display for Plain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = !self.0.is_empty()
            && self.0.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'/' | b'.' | b'_' | b'-' | b':' | b'{' | b'}')
            });
        if plain {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
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

    fn access_line(format: LogFormat, client_id: Option<&str>) -> String {
        let line = Access {
            method: "POST",
            route: "/token",
            status: 200,
            latency: Duration::from_micros(1234),
            client_id,
            jti: client_id.map(|_| "Jx3q9Vw2"),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_888_123_000_042);
        let mut bytes = Vec::new();
        format_access(&mut bytes, format, at, &line);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn access_lines_read_like_the_other_text_lines() {
        assert_eq!(
            access_line(LogFormat::Text, Some("cl_acme")),
            "2025-12-04T22:42:03.000042Z  INFO callsign::access: request method=POST \
             route=/token status=200 latency_us=1234 client_id=cl_acme jti=Jx3q9Vw2\n"
        );
        assert!(access_line(LogFormat::Text, None).ends_with(" latency_us=1234\n"));
    }

    #[test]
    fn a_value_that_could_forge_more_of_a_line_is_quoted() {
        let line = access_line(LogFormat::Text, Some("a b\n2025 INFO forged=1"));
        assert_eq!(line.lines().count(), 1);
        assert!(
            line.contains(r#" client_id="a b\n2025 INFO forged=1" "#),
            "{line}"
        );
    }

    #[test]
    fn access_lines_in_json_are_one_object_each() {
        let line = access_line(LogFormat::Json, Some("cl_\"quoted\""));
        assert!(line.ends_with('\n') && line.lines().count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["timestamp"], "2025-12-04T22:42:03.000042Z");
        assert_eq!(value["target"], "callsign::access");
        assert_eq!(value["fields"]["client_id"], "cl_\"quoted\"");
        assert_eq!(value["fields"]["latency_us"], 1234);
        let bare: serde_json::Value =
            serde_json::from_str(&access_line(LogFormat::Json, None)).unwrap();
        assert!(bare["fields"].get("jti").is_none());
    }

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
