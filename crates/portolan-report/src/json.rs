//! JSON documents and JSON Lines streams.

use std::io;

use serde::Serialize;

/// Writes one value as a pretty JSON document and a newline.
pub fn document<T: Serialize + ?Sized>(w: &mut dyn io::Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Writes one value as one line of JSON Lines.
pub fn line<T: Serialize + ?Sized>(w: &mut dyn io::Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// A JSON Lines record with a `type` tag first: `{"type":"port",...}`.
#[derive(Serialize)]
pub struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(flatten)]
    pub value: &'a T,
}

/// Writes `value` as a JSON line tagged with `kind`.
pub fn tagged<T: Serialize>(w: &mut dyn io::Write, kind: &str, value: &T) -> io::Result<()> {
    line(w, &Tagged { kind, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_lines_put_the_type_first() {
        #[derive(Serialize)]
        struct P {
            port: u16,
        }
        let mut buf = Vec::new();
        tagged(&mut buf, "port", &P { port: 22 }).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"type\":\"port\",\"port\":22}\n"
        );
    }
}
