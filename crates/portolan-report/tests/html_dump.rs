#[test]
#[ignore]
fn time_file() {
    let paths = std::env::var("HTML").unwrap();
    let mut b = portolan_browser_test::Browser::launch().unwrap();
    b.enable().unwrap();
    b.call("Performance.enable", serde_json::json!({})).unwrap();
    let m = |b: &mut portolan_browser_test::Browser| {
        let r = b.call("Performance.getMetrics", serde_json::json!({})).unwrap();
        r["metrics"].as_array().unwrap().iter().filter(|m| ["ProcessTime","ThreadTime","TaskDuration","LayoutDuration","RecalcStyleDuration","ScriptDuration"].contains(&m["name"].as_str().unwrap())).map(|m| format!("{}={:.3}", m["name"].as_str().unwrap(), m["value"].as_f64().unwrap())).collect::<Vec<_>>().join(" ")
    };
    for path in paths.split(",") {
        eprintln!("before {}", m(&mut b));
        let t = std::time::Instant::now();
        b.open(std::path::Path::new(&path)).unwrap();
        let nav = b.eval("performance.getEntriesByType('navigation')[0].loadEventEnd").unwrap();
        eprintln!("{:?} load {} after {}", t.elapsed(), nav, m(&mut b));
    }
}
