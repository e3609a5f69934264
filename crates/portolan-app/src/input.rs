//! Reading an input file the user names (a policy, a target list): bounded, as UTF-8 text,
//! with errors that name the input and, for bad UTF-8, the line.

use std::io::Read;
use std::path::Path;

/// Why an input could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {label}")]
    Read {
        label: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{label} is larger than {limit} bytes")]
    TooLarge { label: String, limit: u64 },
    #[error("{label}:{line}: not valid UTF-8")]
    NotUtf8 { label: String, line: usize },
}

/// Reads a whole input (a file, a FIFO, stdin) of at most `limit` bytes as text; `label`
/// names it in errors. Bounded, so that a FIFO or device that never ends costs no more
/// than `limit`.
pub fn read_text(r: impl Read, label: &str, limit: u64) -> Result<String, InputError> {
    read_text_sized(r, label, limit, 0)
}

/// [`read_text`] into a buffer made for `size` bytes (a file's length), so that a large
/// file is not read into one twice its size.
fn read_text_sized(r: impl Read, label: &str, limit: u64, size: u64) -> Result<String, InputError> {
    let mut buf = Vec::with_capacity(usize::try_from(size.min(limit) + 1).unwrap_or(0));
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| InputError::Read {
            label: label.to_string(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge {
            label: label.to_string(),
            limit,
        });
    }
    String::from_utf8(buf).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        InputError::NotUtf8 {
            label: label.to_string(),
            line: good.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

/// [`read_text`] of the file at `path`; `what` says what it is (`policy`, `target list`),
/// and errors name it as `what path`.
pub fn read_text_file(path: &Path, what: &str, limit: u64) -> Result<String, InputError> {
    let label = format!("{what} {}", path.display());
    let file = std::fs::File::open(path).map_err(|source| InputError::Read {
        label: label.clone(),
        source,
    })?;
    let size = file.metadata().map_or(0, |m| m.len());
    read_text_sized(file, &label, limit, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_names_the_input_and_the_line() {
        assert_eq!(read_text(&b"a\nb"[..], "list x", 3).unwrap(), "a\nb");
        let err = read_text(&b"abcd"[..], "list x", 3).unwrap_err();
        assert_eq!(err.to_string(), "list x is larger than 3 bytes");
        let err = read_text(&b"a\n\xff"[..], "list x", 10).unwrap_err();
        assert_eq!(err.to_string(), "list x:2: not valid UTF-8");
        let err = read_text_file(Path::new("/nonexistent/l"), "target list", 10).unwrap_err();
        assert_eq!(err.to_string(), "cannot read target list /nonexistent/l");
    }
}
