//! The module graph of a go.mod as the go command resolves it (for `ferry mirror`): its build list (the
//! versions whose zips a build may need) and every module version whose go.mod it reads. The go command
//! itself runs in a scratch module holding the go.mod (and its go.sum), isolated as every fetch is, with
//! `GOPROXY` set by the caller (Ferry's own address, so what it reads is filled through Ferry).

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::FetchError;
use crate::command;
use crate::config::FetcherConfig;
use crate::scratch::ScratchDir;

/// `go list -m all` and `go mod graph` of a large project print megabytes; the fetcher's usual bound is
/// meant for one module's answers.
const MAX_GRAPH_OUTPUT: usize = 64 << 20;

/// A `module@version` pair, canonical as the go command printed it.
pub type ModuleVersion = (String, String);

/// What a build of the go.mod reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleGraph {
    /// The build list without the main module (`go list -m all`; replacements by another module version
    /// in their place, replacements by a directory left out).
    pub build_list: BTreeSet<ModuleVersion>,
    /// Every module version in the requirement graph (`go mod graph`): their go.mod files are read.
    pub go_mods: BTreeSet<ModuleVersion>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    path: String,
    version: Option<String>,
    #[serde(default)]
    main: bool,
    replace: Option<Box<Listed>>,
    error: Option<crate::go_json::ModuleError>,
}

/// Resolves the graph of `go_mod` (with `go_sum`, when given) through `goproxy`.
pub async fn resolve_graph(
    config: &FetcherConfig,
    goproxy: &str,
    go_mod: &[u8],
    go_sum: Option<&[u8]>,
) -> Result<ModuleGraph, FetchError> {
    let scratch = ScratchDir::create(&config.work_dir)?;
    let cwd = &scratch.layout().cwd;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(cwd.join(name), bytes)
            .map_err(|e| FetchError::io(format!("writing the scratch module's {name}"), e))
    };
    write("go.mod", go_mod)?;
    if let Some(go_sum) = go_sum {
        write("go.sum", go_sum)?;
    }
    let mut env = config.go_command_env(scratch.layout());
    env.insert("GOPROXY".into(), goproxy.into());
    // Everything goes through `goproxy`: GONOPROXY (which defaults to GOPRIVATE) would send private
    // modules straight to their hosts, past Ferry. A pattern that matches no module path keeps them on it.
    env.insert("GONOPROXY".into(), "none.invalid".into());
    scratch.link_netrc(&env);
    let run = |args: &'static [&'static str]| {
        let env = env.clone();
        let scratch = &scratch;
        async move {
            let output = command::run_go(
                &config.go_binary,
                args,
                &scratch.layout().cwd,
                &env,
                config.timeout,
                MAX_GRAPH_OUTPUT,
            )
            .await?;
            if !output.status.success() {
                return Err(FetchError::from_go_message(&output.stderr_text()));
            }
            Ok(output.stdout)
        }
    };
    let listed = run(&["list", "-m", "-json", "all"]).await?;
    let build_list = build_list(&listed)?;
    let graph = run(&["mod", "graph"]).await?;
    let mut go_mods = graph_nodes(&String::from_utf8_lossy(&graph));
    go_mods.extend(build_list.iter().cloned());
    Ok(ModuleGraph {
        build_list,
        go_mods,
    })
}

/// The build list in `go list -m -json all`'s stream of objects.
fn build_list(stdout: &[u8]) -> Result<BTreeSet<ModuleVersion>, FetchError> {
    let mut list = BTreeSet::new();
    for listed in serde_json::Deserializer::from_slice(stdout).into_iter::<Listed>() {
        let listed = listed.map_err(|e| FetchError::InvalidOutput {
            message: format!("`go list -m -json all` printed invalid JSON: {e}"),
        })?;
        if let Some(error) = &listed.error {
            return Err(FetchError::from_go_message(&format!(
                "{}: {}",
                listed.path, error.err
            )));
        }
        if listed.main {
            continue;
        }
        let used = listed.replace.as_deref().unwrap_or(&listed);
        if let Some(version) = used.version.as_ref().filter(|v| !v.is_empty()) {
            list.insert((used.path.clone(), version.clone()));
        }
    }
    Ok(list)
}

/// The `module@version` nodes of `go mod graph` (the main module, printed without a version, left out).
fn graph_nodes(graph: &str) -> BTreeSet<ModuleVersion> {
    graph
        .split_whitespace()
        .filter_map(|node| node.rsplit_once('@'))
        // `go@1.21` and `toolchain@go1.21.0` name the Go version a module needs, not a module.
        .filter(|(path, _)| *path != "go" && *path != "toolchain")
        .map(|(path, version)| (path.to_string(), version.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_list_takes_replacements_and_leaves_the_main_module_and_directories_out() {
        let stdout = br#"{"Path":"app","Main":true}
{"Path":"example.com/a","Version":"v1.0.0"}
{"Path":"example.com/b","Version":"v1.1.0","Replace":{"Path":"example.com/fork","Version":"v1.1.1"}}
{"Path":"example.com/c","Version":"v1.0.0","Replace":{"Path":"../c"}}"#;
        let list: Vec<_> = build_list(stdout).unwrap().into_iter().collect();
        assert_eq!(
            list,
            [
                ("example.com/a".to_string(), "v1.0.0".to_string()),
                ("example.com/fork".to_string(), "v1.1.1".to_string()),
            ]
        );
    }

    #[test]
    fn graph_nodes_are_module_versions_only() {
        let nodes = graph_nodes(
            "app example.com/a@v1.0.0\napp go@1.21\nexample.com/a@v1.0.0 example.com/b@v0.1.0\nexample.com/a@v1.0.0 toolchain@go1.22.0\n",
        );
        let nodes: Vec<_> = nodes.into_iter().map(|(p, v)| format!("{p}@{v}")).collect();
        assert_eq!(nodes, ["example.com/a@v1.0.0", "example.com/b@v0.1.0"]);
    }
}
