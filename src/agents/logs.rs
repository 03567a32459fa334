//! A tenant's log: one file per tenant under its data directory
//! (`logs/runtime.log`, rotated once to `runtime.log.1` past 8 MiB). The
//! container's lifecycle and the `process` runtime's stdout and stderr go
//! there, one line each: `2026-02-21T03:00:01Z [INFO] Agent started`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use switchboard_actors::tenant::Level;

/// Past this size the file is rotated when next opened for writing.
const ROTATE_BYTES: u64 = 8 * 1024 * 1024;
/// The longest line kept; longer ones are cut.
const MAX_LINE_CHARS: usize = 4_000;

#[derive(Debug, Clone)]
pub struct TenantLog {
    path: PathBuf,
}

impl TenantLog {
    /// The log of the tenant whose directory is `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        TenantLog { path: dir.join("logs").join("runtime.log") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for appending, rotating it first when it grew too large.
    pub fn open(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        if fs::metadata(&self.path).map(|m| m.len() > ROTATE_BYTES).unwrap_or(false) {
            let _ = fs::rename(&self.path, self.path.with_extension("log.1"));
        }
        OpenOptions::new().create(true).append(true).open(&self.path)
    }

    /// Appends one line; a log that cannot be written is reported, not fatal.
    pub fn write(&self, level: Level, line: &str) {
        let written = self.open().and_then(|mut f| f.write_all(format_line(level, line).as_bytes()));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the tenant log");
        }
    }

    /// The last `n` lines, oldest first; none when there is no log yet.
    pub fn tail(&self, n: usize) -> std::io::Result<Vec<String>> {
        match File::open(&self.path) {
            Ok(f) => tail_lines(f, n),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// `TIMESTAMP [LEVEL] text\n`. A line that already names its level (a child
/// writing `[WARN] ...`) keeps it.
pub fn format_line(level: Level, line: &str) -> String {
    let line: String =
        line.trim_end().chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_LINE_CHARS).collect();
    let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let named = ["[INFO]", "[WARN]", "[ERROR]", "[DEBUG]"].iter().any(|p| line.starts_with(p));
    if named {
        format!("{at} {line}\n")
    } else {
        format!("{at} [{}] {line}\n", level.as_str())
    }
}

/// Reads backwards in chunks until `n` lines are found or the file starts.
fn tail_lines(mut f: File, n: usize) -> std::io::Result<Vec<String>> {
    const CHUNK: u64 = 64 * 1024;
    let len = f.seek(SeekFrom::End(0))?;
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    while start > 0 {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (start - from) as usize];
        f.seek(SeekFrom::Start(from))?;
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
        // n lines need n newlines before the last line's end (plus one to know the first is whole).
        if buf.iter().filter(|b| **b == b'\n').count() > n {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let skip = lines.len().saturating_sub(n);
    // When reading stopped mid-file the first piece may be a partial line; it is among the skipped ones.
    Ok(lines[skip..].iter().map(|l| l.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_the_last_lines_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let log = TenantLog::in_dir(dir.path());
        assert!(log.tail(5).unwrap().is_empty());
        let mut f = log.open().unwrap();
        for i in 0..20_000 {
            writeln!(f, "line {i:05} {}", "x".repeat(20)).unwrap();
        }
        let last = log.tail(3).unwrap();
        assert_eq!(last.len(), 3);
        assert!(last[0].starts_with("line 19997"), "{last:?}");
        assert!(last[2].starts_with("line 19999"));
        assert_eq!(log.tail(1000).unwrap().len(), 1000);
        assert_eq!(log.tail(1000).unwrap()[0], format!("line 19000 {}", "x".repeat(20)));
    }

    #[test]
    fn lines_carry_a_time_and_a_level_and_no_control_characters() {
        let line = format_line(Level::Warn, "restarting\u{1b}[31m\r");
        assert!(line.ends_with(" [WARN] restarting [31m\n"), "{line:?}");
        assert!(line.starts_with("20"), "{line}");
        let kept = format_line(Level::Info, "[ERROR] boom");
        assert!(kept.ends_with("Z [ERROR] boom\n"), "{kept}");
    }
}
