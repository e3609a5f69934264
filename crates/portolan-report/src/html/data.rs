//! The data embedded in a report, and reading it back.
//!
//! The report's [`ReportInput`] is serialized as JSON into
//! `<script type="application/json" id="portolan-data">`. Inside it every `<` is written
//! `\u003c` (the same JSON value), so neither `</script` nor `<!--` can occur and end or
//! hide the element early. Past [`PLAIN_MAX`] bytes the JSON is gzip-compressed and the
//! element holds it as one base64 JSON string (`data-encoding="gzip+base64"`), which keeps
//! a report of 10,000 listeners small. `data-sha256` is the SHA-256 of the element's
//! text exactly as it stands in the file.

use std::io::{Read, Write};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Error, ReportInput, Result};

/// The `id` of the element that holds the data.
pub const DATA_ID: &str = "portolan-data";
/// The version of the embedded document.
pub const SCHEMA: u32 = 1;
/// Larger JSON is compressed.
pub const PLAIN_MAX: usize = 512 * 1024;
/// Read back at most this much decompressed JSON.
const READ_MAX: u64 = 512 * 1024 * 1024;

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format: &'static str,
    schema: u32,
    report: &'a ReportInput,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    format: String,
    schema: u32,
    report: ReportInput,
}

/// What a report holds, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    pub schema: u32,
    /// `json` or `gzip+base64`.
    pub encoding: String,
    /// The SHA-256 (hex) of the embedded text, as checked.
    pub sha256: String,
    pub input: ReportInput,
}

/// The data element's contents and attributes, ready to write.
pub(crate) struct Embedded {
    pub text: String,
    pub encoding: &'static str,
    pub sha256: String,
}

pub(crate) fn embed(input: &ReportInput) -> Result<Embedded> {
    let json = serde_json::to_string(&EnvelopeOut {
        format: "portolan-report",
        schema: SCHEMA,
        report: input,
    })
    .map_err(|e| Error::Data(e.to_string()))?;
    let (text, encoding) = if json.len() <= PLAIN_MAX {
        (json.replace('<', "\\u003c"), "json")
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes())?;
        let packed = gz.finish()?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(packed);
        (format!("\"{b64}\""), "gzip+base64")
    };
    let sha256 = hex(&Sha256::digest(text.as_bytes()));
    Ok(Embedded {
        text,
        encoding,
        sha256,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of attribute `name` in the start tag `tag` (double-quoted, as portolan
/// writes them).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

/// Reads back the data a report embeds, after checking its SHA-256.
pub fn read_back(html: &str) -> Result<ReportData> {
    let id = format!(" id=\"{DATA_ID}\"");
    let mut from = 0;
    let (tag, body) = loop {
        let start = html[from..].find("<script").ok_or(Error::NoData)? + from;
        let end = html[start..].find('>').ok_or(Error::NoData)? + start;
        let tag = &html[start..end];
        if tag.contains(&id) {
            let close = html[end + 1..].find("</script").ok_or(Error::NoData)? + end + 1;
            break (tag, &html[end + 1..close]);
        }
        from = end;
    };
    let expected = attr(tag, "data-sha256").unwrap_or_default().to_string();
    let found = hex(&Sha256::digest(body.as_bytes()));
    if expected != found {
        return Err(Error::Digest { expected, found });
    }
    let encoding = attr(tag, "data-encoding").unwrap_or("json").to_string();
    let bad = |e: &dyn std::fmt::Display| Error::Data(e.to_string());
    let json = match encoding.as_str() {
        "json" => body.to_string(),
        "gzip+base64" => {
            let b64: String = serde_json::from_str(body).map_err(|e| bad(&e))?;
            let packed = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| bad(&e))?;
            let mut json = String::new();
            flate2::read::GzDecoder::new(&packed[..])
                .take(READ_MAX)
                .read_to_string(&mut json)
                .map_err(|e| bad(&e))?;
            json
        }
        other => return Err(Error::Data(format!("unknown data-encoding '{other}'"))),
    };
    let env: EnvelopeIn = serde_json::from_str(&json).map_err(|e| bad(&e))?;
    if env.format != "portolan-report" || env.schema != SCHEMA {
        return Err(Error::Data(format!(
            "format '{}' schema {}, expected portolan-report schema {SCHEMA}",
            env.format, env.schema
        )));
    }
    Ok(ReportData {
        schema: env.schema,
        encoding,
        sha256: found,
        input: env.report,
    })
}
