//! `portolan detect`: what answers on each HOST:PORT.

use std::io::Write;
use std::process::ExitCode;

use portolan_app::detect::{Request, detect};
use portolan_report::detect as render;

use crate::cli::DetectArgs;
use crate::out::use_color;

pub fn run(args: &DetectArgs) -> anyhow::Result<ExitCode> {
    let found = detect(&Request {
        targets: &args.targets,
        signatures: args.signatures.as_deref(),
        timeout: Some(args.timeout),
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for d in &found {
            render::json_line(&mut out, &d.target, d.address, d.transport, &d.detected)?;
        }
    } else {
        render::table(found.iter().map(|d| (d.target.as_str(), &d.detected)))
            .write(&mut out, use_color())?;
    }
    out.flush()?;
    let identified = found.iter().any(|d| d.detected.is_identified());
    Ok(if identified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
