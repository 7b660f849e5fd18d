//! Logging: `tracing` to stderr as text or JSON, filtered by `log.level` (or `RUST_LOG`).
//!
//! Logging never stops or slows the service, whatever happens to stderr. Each event is
//! formatted on the thread that logs it and handed to a bounded queue ([`QUEUE_LINES`] lines)
//! without waiting; one thread (`LogQueue`'s) writes the queue to stderr. A reader that stalls
//! fills the queue and further lines are dropped; a reader that has gone makes every write fail
//! (`EPIPE`: the process ignores SIGPIPE, as Rust programs do), and the line is dropped. Both
//! are counted in [`dropped_lines`], exported as `ticker_log_lines_dropped_total`.
//!
//! Why not `tracing-appender`'s non-blocking writer, which has the same queue: its writer thread
//! drops failed writes without counting them, and its guard reports a stuck writer at exit with
//! `println!`, which panics on a closed stdout and blocks on a stalled one. And why
//! tracing-subscriber's own report of failed writes is turned off: it uses `eprintln!`, which
//! panics when stderr is broken, in whatever task was logging (a session, the shutdown).

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::{LogFormat, LogSettings};

/// Log lines that may wait for stderr; past this they are dropped. At a few hundred bytes a
/// line, a few MiB at most.
pub const QUEUE_LINES: usize = 16_384;
/// At exit, how long the guard waits for the queue to be written out.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Lines lost: queue full, writer thread gone, or stderr failing.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the global subscriber; call once, from `main`, and keep the guard until exit: its
/// drop writes out what is still queued, waiting [`FLUSH_TIMEOUT`] at most.
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let queue = LogQueue::start(io::stderr);
    let guard = LogGuard(queue.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(queue)
        .log_internal_errors(false)
        .with_ansi(io::stderr().is_terminal());
    match settings.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// Log lines lost so far: dropped from a full queue, or written to a broken stderr.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

enum Entry {
    Line(Vec<u8>),
    /// Answer once everything queued before has been written.
    Flush(SyncSender<()>),
}

/// The sending side of the log queue; tracing-subscriber writes each formatted event into a
/// clone of it with one `write` call.
#[derive(Clone)]
struct LogQueue {
    entries: SyncSender<Entry>,
}

impl LogQueue {
    /// Starts the thread that writes queued lines to `sink()`. If no thread can be started,
    /// every line counts as dropped.
    fn start<W: Write>(sink: impl FnOnce() -> W + Send + 'static) -> Self {
        let (entries, queued) = mpsc::sync_channel(QUEUE_LINES);
        let _ = std::thread::Builder::new()
            .name("ticker-log".to_owned())
            .spawn(move || write_out(&queued, &mut sink()));
        Self { entries }
    }
}

/// The writer thread: writes every line, counting those that fail; never gives up or panics.
fn write_out(queued: &Receiver<Entry>, sink: &mut impl Write) {
    for entry in queued {
        match entry {
            Entry::Line(line) => {
                if sink.write_all(&line).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
            Entry::Flush(done) => {
                let _ = sink.flush();
                let _ = done.send(());
            }
        }
    }
}

impl Write for LogQueue {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if self.entries.try_send(Entry::Line(line.to_vec())).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = LogQueue;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes out what is still queued when dropped at exit, for a second at most: a stalled log
/// reader delays the exit by that much, never more.
pub struct LogGuard(LogQueue);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (done, flushed) = mpsc::sync_channel(1);
        let deadline = std::time::Instant::now() + FLUSH_TIMEOUT;
        // A full queue means the writer is stuck; poll for room until the deadline.
        let mut entry = Entry::Flush(done);
        loop {
            match self.0.entries.try_send(entry) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    entry = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return,
            }
        }
        let _ = flushed.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that fails every write, like stderr whose reader has gone.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    /// Lines written to a broken sink are counted as dropped; writing never fails or blocks,
    /// and the guard returns.
    #[test]
    fn broken_sink_drops_and_counts() {
        let mut queue = LogQueue::start(|| Broken);
        let before = dropped_lines();
        for _ in 0..10 {
            queue
                .write_all(b"a line\n")
                .expect("writing to the queue never fails");
        }
        drop(LogGuard(queue));
        assert!(dropped_lines() >= before + 10);
    }
}
