//! What an interpreter runs: the script, archive or classpath named on its command line
//! (`python3 -u /srv/app.py`, `java -jar app.jar`), so that the audit judges the code
//! that answers on a port and not only the interpreter's binary. Pure: the command line
//! in, the files (as given, maybe relative) out.

use std::path::Path;

/// The interpreters the audit knows how to read a command line of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    Python,
    Perl,
    Ruby,
    Node,
    Shell,
    Php,
    Java,
    Lua,
}

impl Interpreter {
    /// The interpreter an executable is (`/usr/bin/python3.11`, `nodejs`, `bash`), by
    /// its file name without a version suffix.
    pub fn of(exe: &str) -> Option<Interpreter> {
        let name = Path::new(exe.trim_end_matches(" (deleted)"))
            .file_name()?
            .to_str()?;
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        Some(match stem {
            "python" | "pypy" => Interpreter::Python,
            "perl" => Interpreter::Perl,
            "ruby" => Interpreter::Ruby,
            "node" | "nodejs" => Interpreter::Node,
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" => Interpreter::Shell,
            "php" => Interpreter::Php,
            "java" => Interpreter::Java,
            "lua" | "luajit" => Interpreter::Lua,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Interpreter::Python => "python",
            Interpreter::Perl => "perl",
            Interpreter::Ruby => "ruby",
            Interpreter::Node => "node",
            Interpreter::Shell => "the shell",
            Interpreter::Php => "php",
            Interpreter::Java => "java",
            Interpreter::Lua => "lua",
        }
    }
}

/// What kind of file the interpreter runs, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Script,
    Archive,
    Classpath,
    DocumentRoot,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Script => "the script",
            Role::Archive => "the archive",
            Role::Classpath => "the classpath entry",
            Role::DocumentRoot => "the document root",
        }
    }
}

/// What an interpreter's command line runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub interpreter: Interpreter,
    /// The files it runs code from, as given (relative ones are relative to its working
    /// directory).
    pub files: Vec<(Role, String)>,
    /// Why there is no file to judge: code given on the command line (`-c`, `-e`), a
    /// module (`-m`), standard input.
    pub no_file: Option<String>,
    /// Python only: it imports modules first from its working directory (with `-c`, `-m`
    /// or standard input, unless `-I` or `-P`) rather than from the script's directory.
    pub imports_from_cwd: bool,
    /// Python only: it imports modules first from the script's directory (unless `-I`
    /// or `-P`).
    pub imports_from_script_dir: bool,
}

/// Options of each interpreter that take a value (as the next argument when not attached
/// to the option), and the ones whose value is code given on the command line.
struct Syntax {
    /// Short option letters whose value is the rest of the cluster or the next argument.
    value: &'static str,
    /// Short option letters whose value is code (`-c`, `-e`) or a module (`-m`).
    code: &'static str,
    module: &'static str,
    /// Short option letters whose value, if any, is only the rest of the cluster.
    attached: &'static str,
    /// Long options that take the next argument as their value (when not `--opt=value`).
    long_value: &'static [&'static str],
    long_code: &'static [&'static str],
}

fn syntax(i: Interpreter) -> Syntax {
    match i {
        Interpreter::Python => Syntax {
            value: "WXQ",
            code: "c",
            module: "m",
            attached: "",
            long_value: &["--check-hash-based-pycs"],
            long_code: &[],
        },
        Interpreter::Perl => Syntax {
            value: "IM",
            code: "eE",
            module: "",
            attached: "mxil0dDCV",
            long_value: &[],
            long_code: &[],
        },
        Interpreter::Ruby => Syntax {
            value: "IrCEF",
            code: "e",
            module: "",
            attached: "WxKT0",
            long_value: &[],
            long_code: &[],
        },
        Interpreter::Node => Syntax {
            value: "rC",
            code: "ep",
            module: "",
            attached: "",
            long_value: &[
                "--require",
                "--import",
                "--loader",
                "--experimental-loader",
                "--conditions",
                "--input-type",
                "--title",
                "--env-file",
            ],
            long_code: &["--eval", "--print"],
        },
        Interpreter::Shell => Syntax {
            value: "oO",
            code: "c",
            module: "",
            attached: "",
            long_value: &["--rcfile", "--init-file"],
            long_code: &[],
        },
        Interpreter::Php => Syntax {
            value: "cdzSft",
            code: "rRBE",
            module: "",
            attached: "",
            long_value: &[],
            long_code: &[],
        },
        Interpreter::Java => Syntax {
            value: "",
            code: "",
            module: "",
            attached: "",
            long_value: &[],
            long_code: &[],
        },
        Interpreter::Lua => Syntax {
            value: "l",
            code: "e",
            module: "",
            attached: "",
            long_value: &[],
            long_code: &[],
        },
    }
}

/// The interpreter a process is: by its executable, else by its program name (`argv[0]`).
pub fn interpreter(exe: Option<&str>, argv0: Option<&str>) -> Option<Interpreter> {
    exe.and_then(Interpreter::of)
        .or_else(|| argv0.and_then(Interpreter::of))
}

/// Reads an interpreter's command line. `exe` is the running executable (else `argv[0]`
/// is used); `argv[0]` is the program name and is skipped. `None` when the executable is
/// no interpreter the audit knows.
pub fn launch(exe: Option<&str>, argv: &[String]) -> Option<Launch> {
    let interpreter = interpreter(exe, argv.first().map(String::as_str))?;
    let args = argv.get(1..).unwrap_or_default();
    let mut out = Launch {
        interpreter,
        files: Vec::new(),
        no_file: None,
        imports_from_cwd: false,
        imports_from_script_dir: false,
    };
    if interpreter == Interpreter::Java {
        java(args, &mut out);
        return Some(out);
    }
    let syn = syntax(interpreter);
    let mut safe_path = false;
    let mut php_server = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if a == "--" {
            if let Some(s) = args.get(i) {
                out.files.push((Role::Script, s.clone()));
            }
            break;
        }
        if a == "-" {
            out.no_file = Some("reads its program from standard input".into());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let name = format!("--{name}");
            let takes = |list: &[&str]| list.contains(&name.as_str());
            if takes(syn.long_code) {
                out.no_file = Some(format!("runs code given on its command line ({name})"));
                break;
            }
            if takes(syn.long_value) && attached.is_none() {
                i += 1;
            }
            continue;
        }
        // A shell's `+o option`.
        if interpreter == Interpreter::Shell && a.starts_with('+') {
            if a == "+o" || a == "+O" {
                i += 1;
            }
            continue;
        }
        let Some(cluster) = a.strip_prefix('-') else {
            // The first argument that is no option is the script.
            out.files.push((Role::Script, a.to_string()));
            break;
        };
        let mut stop = false;
        for (at, c) in cluster.char_indices() {
            let rest = &cluster[at + c.len_utf8()..];
            if interpreter == Interpreter::Python && (c == 'I' || c == 'P') {
                safe_path = true;
            }
            if syn.code.contains(c) {
                out.no_file = Some(format!("runs code given on its command line (-{c})"));
                stop = true;
                break;
            }
            if syn.module.contains(c) {
                let module = if rest.is_empty() {
                    args.get(i).cloned().unwrap_or_default()
                } else {
                    rest.to_string()
                };
                out.no_file = Some(format!("runs the module {module} (-m), not a file"));
                stop = true;
                break;
            }
            if syn.value.contains(c) {
                let value = if rest.is_empty() {
                    i += 1;
                    args.get(i - 1).cloned()
                } else {
                    Some(rest.to_string())
                };
                if interpreter == Interpreter::Php {
                    match (c, value) {
                        ('f', Some(v)) => {
                            out.files.push((Role::Script, v));
                            stop = true;
                        }
                        ('t', Some(v)) => out.files.push((Role::DocumentRoot, v)),
                        ('S', _) => php_server = true,
                        _ => {}
                    }
                }
                break;
            }
            if syn.attached.contains(c) {
                break;
            }
            if interpreter == Interpreter::Shell && c == 's' {
                out.no_file = Some("reads its program from standard input (-s)".into());
                stop = true;
                break;
            }
        }
        if stop {
            break;
        }
    }
    if php_server && !out.files.iter().any(|(r, _)| *r == Role::DocumentRoot) {
        // The built-in server serves its working directory.
        out.files.push((Role::DocumentRoot, ".".into()));
    }
    if out.files.is_empty() && out.no_file.is_none() {
        out.no_file = Some("reads its program from standard input".into());
    }
    if interpreter == Interpreter::Python && !safe_path {
        let script = out.files.iter().any(|(r, _)| *r == Role::Script);
        out.imports_from_script_dir = script;
        out.imports_from_cwd = !script;
    }
    Some(out)
}

/// `java [options] -jar X.jar`, `-cp A:B Main`, `-p MODULES -m mod/Main`.
fn java(args: &[String], out: &mut Launch) {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        let path_list = |v: &str, role: Role, out: &mut Launch| {
            for e in v.split(':').filter(|e| !e.is_empty()) {
                let e = e.trim_end_matches('*').trim_end_matches('/');
                let e = if e.is_empty() { "/" } else { e };
                out.files.push((role, e.to_string()));
            }
        };
        match a {
            "-jar" => {
                if let Some(j) = args.get(i) {
                    out.files.push((Role::Archive, j.clone()));
                }
                break;
            }
            "-cp" | "-classpath" | "--class-path" | "-p" | "--module-path" => {
                if let Some(v) = args.get(i) {
                    path_list(v, Role::Classpath, out);
                }
                i += 1;
            }
            "-m" | "--module" => break,
            "--add-modules"
            | "--add-opens"
            | "--add-exports"
            | "--add-reads"
            | "--patch-module"
            | "--limit-modules"
            | "--upgrade-module-path" => i += 1,
            _ if a.starts_with("--class-path=") || a.starts_with("--module-path=") => {
                let v = a.split_once('=').map_or("", |(_, v)| v);
                path_list(v, Role::Classpath, out);
            }
            _ if a.starts_with('-') => {}
            // The main class: what follows are its arguments.
            _ => break,
        }
    }
    if out.files.is_empty() {
        out.no_file = Some("names no -jar archive or -cp classpath".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: &str) -> Launch {
        let argv: Vec<String> = cmd.split(' ').map(str::to_string).collect();
        launch(None, &argv).unwrap()
    }

    fn files(cmd: &str) -> Vec<String> {
        run(cmd).files.into_iter().map(|(_, f)| f).collect()
    }

    #[test]
    fn interpreters() {
        for (exe, want) in [
            ("/usr/bin/python3.11", Interpreter::Python),
            ("/usr/bin/python3", Interpreter::Python),
            ("/usr/bin/perl5.36.0", Interpreter::Perl),
            ("/usr/bin/nodejs", Interpreter::Node),
            ("/usr/bin/dash", Interpreter::Shell),
            ("/usr/lib/jvm/java-17/bin/java", Interpreter::Java),
            ("/usr/bin/php8.2", Interpreter::Php),
            ("/usr/bin/lua5.4", Interpreter::Lua),
            ("/tmp/x/python3 (deleted)", Interpreter::Python),
        ] {
            assert_eq!(Interpreter::of(exe), Some(want), "{exe}");
        }
        assert_eq!(Interpreter::of("/usr/sbin/sshd"), None);
        assert_eq!(Interpreter::of("/usr/sbin/php-fpm8.2"), None);
        assert!(launch(Some("/usr/sbin/nginx"), &["nginx".into()]).is_none());
    }

    #[test]
    fn scripts() {
        assert_eq!(files("python3 /tmp/x/evil.py 4444"), ["/tmp/x/evil.py"]);
        assert_eq!(files("python3 -u -W ignore -X dev app.py"), ["app.py"]);
        assert_eq!(files("python3 -Wignore -OO app.py --port 1"), ["app.py"]);
        assert_eq!(files("perl -w -I lib -MStrict srv.pl"), ["srv.pl"]);
        assert_eq!(files("perl -Ilib -wl srv.pl"), ["srv.pl"]);
        assert_eq!(files("ruby -r socket -w srv.rb"), ["srv.rb"]);
        assert_eq!(
            files("node --max-old-space-size=512 -r dotenv/config server.js"),
            ["server.js"]
        );
        assert_eq!(files("node --require x --inspect server.js"), ["server.js"]);
        assert_eq!(files("bash -e -o pipefail ./run.sh"), ["./run.sh"]);
        assert_eq!(files("sh -- -odd.sh"), ["-odd.sh"]);
        assert_eq!(
            files("php -d display_errors=1 -f /srv/w.php"),
            ["/srv/w.php"]
        );
        assert_eq!(files("php -S 0.0.0.0:8000 -t /tmp/www"), ["/tmp/www"]);
        assert_eq!(files("php -S 0.0.0.0:8000"), ["."]);
        assert_eq!(files("lua -l socket srv.lua"), ["srv.lua"]);
        assert_eq!(
            files("java -Xmx1g -Dx=y -jar /opt/app/app.jar --port 8080"),
            ["/opt/app/app.jar"]
        );
        assert_eq!(
            files("java -cp /opt/a/lib/*:classes Main"),
            ["/opt/a/lib", "classes"]
        );
        assert_eq!(files("java --class-path=/x/a.jar Main"), ["/x/a.jar"]);
        assert_eq!(run("java -jar a.jar").files[0].0, Role::Archive);
    }

    #[test]
    fn no_file() {
        for (cmd, why) in [
            ("python3 -c print(1)", "(-c)"),
            ("python3 -uc print(1)", "(-c)"),
            ("python3 -u -m http.server 8000", "http.server (-m)"),
            ("python3 -mhttp.server", "http.server (-m)"),
            ("perl -we print", "(-e)"),
            ("node -e x", "(-e)"),
            ("node --eval=x", "(--eval)"),
            ("bash -c true", "(-c)"),
            ("sh -ec true", "(-c)"),
            ("sh -s", "(-s)"),
            ("php -r echo", "(-r)"),
            ("lua -e x", "(-e)"),
            ("python3", "standard input"),
            ("python3 -", "standard input"),
            ("java -m mod/Main", "no -jar"),
            ("java Main", "no -jar"),
        ] {
            let l = run(cmd);
            assert!(l.files.is_empty(), "{cmd}: {l:?}");
            assert!(l.no_file.as_deref().unwrap().contains(why), "{cmd}: {l:?}");
        }
    }

    #[test]
    fn python_import_path() {
        let l = run("python3 /srv/app.py");
        assert!(l.imports_from_script_dir && !l.imports_from_cwd);
        let l = run("python3 -m http.server");
        assert!(l.imports_from_cwd && !l.imports_from_script_dir);
        let l = run("python3 -I -m http.server");
        assert!(!l.imports_from_cwd && !l.imports_from_script_dir);
        let l = run("python3 -P /srv/app.py");
        assert!(!l.imports_from_script_dir);
        assert!(!run("perl x.pl").imports_from_script_dir);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(exe in "[a-z/.0-9]{0,12}", args in proptest::collection::vec(".{0,12}", 0..8)) {
            let _ = launch(Some(&exe), &args);
            for i in ["python3", "perl", "ruby", "node", "sh", "php", "java", "lua"] {
                let _ = launch(Some(i), &args);
            }
        }
    }
}
