mod html_common;
#[test]
#[ignore]
fn dump() {
    let input = html_common::many(10_000);
    let t = std::time::Instant::now();
    let json = serde_json::to_string(&input).unwrap();
    eprintln!("json {} {:?}", json.len(), t.elapsed());
    let t = std::time::Instant::now();
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json.as_bytes()).unwrap();
    let v = gz.finish().unwrap();
    eprintln!("gz {} {:?}", v.len(), t.elapsed());
    for (name, input) in [("sample", html_common::sample()), ("many", html_common::many(10_000)), ("hostile", html_common::hostile())] {
        let t = std::time::Instant::now();
        let page = portolan_report::html::to_string(&input).unwrap();
        eprintln!("{name}: {:?}", t.elapsed());
        std::fs::write(format!("/tmp/report-{name}.html"), page).unwrap();
    }
}
