//! Compiles IANA's CSV (`data/service-names-port-numbers.csv`) into static tables in
//! `OUT_DIR`, so that the program parses nothing when it starts:
//!
//! - `iana_strings.txt`: every distinct text, end to end (included with `include_str!`);
//! - `iana.rs`: string offsets, one record per CSV row (file order), the name index (sorted
//!   by lower-case name) and the port index (the port space cut into segments, each with
//!   the records that cover it).

#[path = "src/iana_csv.rs"]
#[allow(dead_code)]
mod iana_csv;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const NONE: u16 = u16::MAX;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let csv = manifest.join("../../data/service-names-port-numbers.csv");
    println!("cargo::rerun-if-changed={}", csv.display());
    println!("cargo::rerun-if-changed=src/iana_csv.rs");
    let text =
        std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("reading {}: {e}", csv.display()));
    let rows = iana_csv::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    assert!(
        rows.len() < usize::from(NONE),
        "too many records for u16 indices"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    generate(&rows, &out);
}

struct Strings {
    text: String,
    offsets: Vec<u32>,
    seen: HashMap<String, u32>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings {
            text: String::new(),
            offsets: vec![0],
            seen: HashMap::new(),
        };
        s.add("");
        s
    }

    fn add(&mut self, t: &str) -> u32 {
        if let Some(&i) = self.seen.get(t) {
            return i;
        }
        let i = u32::try_from(self.offsets.len() - 1).expect("fits");
        self.text.push_str(t);
        self.offsets
            .push(u32::try_from(self.text.len()).expect("strings under 4 GiB"));
        self.seen.insert(t.to_string(), i);
        i
    }
}

fn proto_code(p: &str) -> u8 {
    match p {
        "" => 0,
        "tcp" => 1,
        "udp" => 2,
        "sctp" => 3,
        "dccp" => 4,
        _ => unreachable!("the parser checked the protocol"),
    }
}

/// 0 assigned (named), 1 reserved, 2 unassigned, 3 a nameless row of another kind.
fn status(r: &iana_csv::Row) -> u8 {
    let d = r.description.to_ascii_lowercase();
    if !r.name.is_empty() {
        0
    } else if d.contains("reserved") {
        1
    } else if d.contains("unassigned") {
        2
    } else {
        3
    }
}

fn generate(rows: &[iana_csv::Row], out: &Path) {
    // Link each alias row to its canonical row: same name (IANA names ignore case), same
    // ports and protocol; failing that, any row of that name.
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if !r.name.is_empty() && r.alias_of.is_none() {
            by_name
                .entry(r.name.to_ascii_lowercase())
                .or_default()
                .push(i);
        }
    }
    let mut link = vec![NONE; rows.len()];
    let mut aliases: Vec<Vec<&str>> = vec![Vec::new(); rows.len()];
    for (i, r) in rows.iter().enumerate() {
        let Some(target) = &r.alias_of else { continue };
        let cands = by_name
            .get(&target.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("line {}: alias of unknown name {target}", r.line));
        let canon = cands
            .iter()
            .copied()
            .find(|&c| rows[c].ports == r.ports && rows[c].protocol == r.protocol)
            .unwrap_or(cands[0]);
        link[i] = u16::try_from(canon).expect("checked above");
        if !aliases[canon].contains(&r.name.as_str()) {
            aliases[canon].push(&r.name);
        }
    }

    let mut strings = Strings::new();
    let mut recs = String::new();
    for (i, r) in rows.iter().enumerate() {
        let s = [
            &r.name,
            &r.description,
            &r.assignee,
            &r.contact,
            &r.registered,
            &r.modified,
            &r.reference,
            &r.service_code,
            &r.unauthorized_use,
            &r.notes,
            r.alias_of.as_deref().unwrap_or(""),
            &aliases[i].join(" "),
        ]
        .map(|t| strings.add(t).to_string());
        let (first, last) = r.ports.unwrap_or((0, 0));
        let flags = u8::from(r.ports.is_some()) | status(r) << 1;
        writeln!(
            recs,
            "Raw({first},{last},{},{flags},{},[{}]),",
            proto_code(&r.protocol),
            link[i],
            s.join(",")
        )
        .expect("write to String");
    }

    let mut names: Vec<usize> = (0..rows.len())
        .filter(|&i| !rows[i].name.is_empty())
        .collect();
    names.sort_by_cached_key(|&i| (rows[i].name.to_ascii_lowercase(), i));
    // The lower-case names in that order, end to end, so that a lookup compares bytes.
    let mut name_keys = String::new();
    let mut name_key_off = vec![0u32];
    for &i in &names {
        name_keys.push_str(&rows[i].name.to_ascii_lowercase());
        name_key_off.push(u32::try_from(name_keys.len()).expect("fits"));
    }

    // The port index: cut 0..=65535 at every first port and every last port + 1; each
    // segment lists, in file order, the rows (not alias rows) that cover it.
    let mut cuts = vec![0u32];
    for r in rows {
        if let Some((a, b)) = r.ports {
            cuts.push(u32::from(a));
            cuts.push(u32::from(b) + 1);
        }
    }
    cuts.retain(|&c| c <= 65535);
    cuts.sort_unstable();
    cuts.dedup();
    let mut segs: Vec<Vec<u16>> = vec![Vec::new(); cuts.len()];
    for (i, r) in rows.iter().enumerate() {
        let (Some((a, b)), None) = (r.ports, &r.alias_of) else {
            continue;
        };
        let from = cuts.partition_point(|&c| c < u32::from(a));
        for (s, &c) in cuts.iter().enumerate().skip(from) {
            if c > u32::from(b) {
                break;
            }
            segs[s].push(u16::try_from(i).expect("checked above"));
        }
    }
    let mut seg_start = Vec::new();
    let mut seg_off = vec![0u32];
    let mut seg_recs: Vec<u16> = Vec::new();
    let mut prev: Option<&Vec<u16>> = None;
    for (s, list) in segs.iter().enumerate() {
        if prev == Some(list) {
            continue;
        }
        prev = Some(list);
        seg_start.push(cuts[s]);
        seg_recs.extend(list);
        seg_off.push(u32::try_from(seg_recs.len()).expect("fits"));
    }

    let join = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(",");
    let mut code = String::new();
    writeln!(
        code,
        "// Generated by build.rs from data/service-names-port-numbers.csv. Do not edit.\n\
         pub(crate) static STRINGS: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/iana_strings.txt\"));\n\
         pub(crate) static STR_OFF: [u32; {}] = [{}];\n\
         pub(crate) static RECORDS: [Raw; {}] = [\n{recs}];\n\
         pub(crate) static NAME_INDEX: [u16; {}] = [{}];\n\
         pub(crate) static NAME_KEYS: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/iana_names.txt\"));\n\
         pub(crate) static NAME_KEY_OFF: [u32; {}] = [{}];\n\
         pub(crate) static SEG_START: [u16; {}] = [{}];\n\
         pub(crate) static SEG_OFF: [u32; {}] = [{}];\n\
         pub(crate) static SEG_RECS: [u16; {}] = [{}];",
        strings.offsets.len(),
        join(&mut strings.offsets.iter().map(u32::to_string)),
        rows.len(),
        names.len(),
        join(&mut names.iter().map(usize::to_string)),
        name_key_off.len(),
        join(&mut name_key_off.iter().map(u32::to_string)),
        seg_start.len(),
        join(&mut seg_start.iter().map(u32::to_string)),
        seg_off.len(),
        join(&mut seg_off.iter().map(u32::to_string)),
        seg_recs.len(),
        join(&mut seg_recs.iter().map(u16::to_string)),
    )
    .expect("write to String");
    write_if_changed(&out.join("iana_strings.txt"), &strings.text);
    write_if_changed(&out.join("iana_names.txt"), &name_keys);
    write_if_changed(&out.join("iana.rs"), &code);
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
