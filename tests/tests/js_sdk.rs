//! The JavaScript SDK's TypeScript declarations are valid, match the WIT
//! declarations under `sdk/js/types/`, and describe what the JavaScript
//! plugins actually call: TypeScript (npm, installed into a cache by
//! scripts/test.sh and named by `JUNCTION_TSC`) checks the plugins'
//! sources against `sdk/js/index.d.ts`.

use std::path::PathBuf;
use std::process::{Command, Output};

use junction_tests::plugins::workspace_root;

fn tsc() -> String {
    match std::env::var("JUNCTION_TSC") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!(
            "the JavaScript SDK test needs TypeScript: run ./scripts/test.sh, which installs it into a cache, or set JUNCTION_TSC to a `tsc`"
        ),
    }
}

/// Runs `tsc` over `files`, with the SDK's declarations standing for the
/// `junction-sdk` import.
fn type_check(files: &[PathBuf]) -> Output {
    let root = workspace_root();
    let config = serde_json::json!({
        "compilerOptions": {
            "noEmit": true,
            "allowJs": true,
            "checkJs": true,
            "strict": true,
            // The plugins are plain JavaScript: untyped parameters are theirs.
            "noImplicitAny": false,
            "target": "es2022",
            "module": "es2022",
            "moduleResolution": "bundler",
            // componentize-js's engine gives the web's globals (console,
            // TextEncoder, fetch), not Node's.
            "lib": ["es2022", "dom"],
            "types": [],
            "baseUrl": root,
            "paths": { "junction-sdk": ["sdk/js/index.d.ts"] },
        },
        "files": files,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tsconfig.json");
    std::fs::write(&path, config.to_string()).expect("write tsconfig");
    Command::new(tsc())
        .arg("-p")
        .arg(&path)
        .output()
        .expect("run tsc")
}

#[test]
fn the_javascript_plugins_type_check_against_the_sdk_declarations() {
    let root = workspace_root();
    let files: Vec<PathBuf> = [
        "sdk/js/index.d.ts",
        "sdk/js/types/plugin.d.ts",
        "plugins/hello-js/index.js",
        "plugins/mailchimp-sync-js/src/index.js",
        "tests/plugins/probe-js/index.js",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    let out = type_check(&files);
    assert!(
        out.status.success(),
        "tsc found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_call_is_caught_by_the_declarations() {
    // The check above could pass by checking nothing: a plugin calling the
    // SDK wrongly must fail it.
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("wrong.js");
    std::fs::write(
        &plugin,
        "import { Request } from 'junction-sdk';\nRequest.get('/x').connection(42).sendd();\n",
    )
    .expect("write plugin");
    let out = type_check(&[plugin, workspace_root().join("sdk/js/index.d.ts")]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "tsc accepted a wrong call");
    assert!(report.contains("sendd"), "{report}");
    assert!(report.contains("number"), "{report}");
}
