//! deploy/ as its users run it, offline: every ferry.toml and download file is loaded by the real binary and
//! Ferry started with each answers `/readyz`; the Helm chart passes `helm lint --strict`, renders, and its
//! manifests decode strictly into the Kubernetes API types; the systemd unit passes `systemd-analyze
//! verify`; the compose file loads with the compose specification's loader, and its Ferry services run with
//! their own environment against the S3 server and the GCS emulator on 127.0.0.1, the real `go` command
//! fetching through them; the Dockerfile's runtime settings start Ferry and its health check passes.
//!
//! The tools come from `scripts/deploy-tools.sh` (helm, `ferry-deploy-check` from deploy/check/,
//! systemd-analyze); a missing one fails the test under `FERRY_TEST_REQUIRE_SERVERS=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ferry_testkit::{CloudServer, FixtureModule, GoHome, Process, Upstream, tool_path};
use serde_json::Value;

use crate::harness::{ferry, get_blocking, is_stored, serving, write_file};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file under deploy/ whose name ends with `suffix`.
fn files_ending(suffix: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffix: &str, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, suffix, found);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&deploy(""), suffix, &mut found);
    found.sort();
    found
}

/// The recipes' paths for Ferry's files (`/etc/ferry`, `/var/lib/ferry`) moved under `root`: the container's
/// or the unit's file system laid out in a temporary directory, so each file is loaded as written.
fn rooted(text: &str, root: &Path) -> String {
    let root = root.display();
    text.replace("/etc/ferry/", &format!("{root}/etc/ferry/"))
        .replace("/var/lib/ferry", &format!("{root}/var/lib/ferry"))
        .replace("/var/run/secrets/", &format!("{root}/var/run/secrets/"))
}

/// Ferry started from `ferry_toml` and `download_hcl` (as `/etc/ferry/ferry.toml` and
/// `/etc/ferry/download.hcl` under `root`) and `env`, listening on 127.0.0.1 (FERRY_LISTEN) instead of the
/// file's address; checked to answer `/readyz` with 200.
fn start_config(
    root: &Path,
    ferry_toml: &str,
    download_hcl: &str,
    env: &BTreeMap<String, String>,
) -> (Process, String) {
    let etc = root.join("etc/ferry");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(root.join("var/lib/ferry")).unwrap();
    let config = write_file(&etc, "ferry.toml", &rooted(ferry_toml, root));
    write_file(&etc, "download.hcl", download_hcl);
    let mut command = ferry();
    command
        .current_dir(root)
        .env("HOME", root)
        .envs(env)
        .env("FERRY_CONFIG", &config)
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (process, addr) = serving(command);
    assert_ready(&process, &addr);
    (process, addr)
}

/// Ready: a 200 whose body's first line is `ready` (a line after it may say what is not fatal: here, offline,
/// that the vulnerability database could not be synced).
fn assert_ready(process: &Process, addr: &str) {
    let answer = get_blocking(addr, "/readyz");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    assert!(
        answer.starts_with("HTTP/1.1 200") && body.lines().next() == Some("ready"),
        "{answer}\nlog:\n{}",
        process.log()
    );
}

/// `ferry policy validate FILE`: valid, and without warnings.
fn assert_valid_download_file(file: &Path) {
    let output = run(ferry().args(["policy", "validate"]).arg(file));
    assert!(
        output.status.success() && stdout(&output).contains(": valid"),
        "{}: {}{}",
        file.display(),
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(stderr(&output), "", "{}: warnings", file.display());
}

fn toml_value(text: &str) -> toml::Value {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Ferry's drain as a configuration file sets it (the default when it does not).
fn shutdown_timeout(ferry_toml: &str) -> Duration {
    toml_value(ferry_toml)
        .get("shutdown_timeout")
        .and_then(toml::Value::as_str)
        .map_or(Duration::from_secs(30), duration)
}

// ---------------------------------------------------------------------------------------------------------
// Helm

fn helm() -> Option<PathBuf> {
    tool_path("helm", "FERRY_TEST_HELM")
}

fn deploy_check() -> Option<PathBuf> {
    tool_path("ferry-deploy-check", "FERRY_TEST_DEPLOY_CHECK")
}

/// The chart's values files the tests render: the defaults, three replicas on a bucket, and HTTPS with
/// authentication behind an Ingress.
const BUCKET_VALUES: &str = "helm/examples/s3.yaml";
const TLS_AUTH_VALUES: &str = "helm/examples/tls-auth.yaml";

/// `helm template` of the chart with `args` (`-f FILE`, `--set K=V`); its output, or its error.
fn helm_template(helm: &Path, args: &[&str]) -> Result<String, String> {
    let output = run(Command::new(helm)
        .args(["template", "ferry"])
        .arg(deploy("helm/ferry"))
        .args(["--namespace", "modules", "--kube-version", "1.34.0"])
        .args(args));
    match output.status.success() {
        true => Ok(stdout(&output)),
        false => Err(stderr(&output)),
    }
}

/// The rendered manifests, each decoded strictly into its Kubernetes type by ferry-deploy-check.
fn checked_manifests(check: &Path, rendered: &str) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "rendered.yaml", rendered);
    let output = run(Command::new(check).arg("manifests").arg(&file));
    if !output.status.success() {
        return Err(stderr(&output));
    }
    Ok(stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect())
}

fn render(helm: &Path, check: &Path, args: &[&str]) -> Vec<Value> {
    let rendered =
        helm_template(helm, args).unwrap_or_else(|e| panic!("helm template {args:?}: {e}"));
    checked_manifests(check, &rendered).unwrap_or_else(|e| panic!("{e}"))
}

fn object<'a>(manifests: &'a [Value], kind: &str) -> &'a Value {
    let found = manifests.iter().find(|m| m["kind"] == kind);
    &found.unwrap_or_else(|| panic!("no {kind} rendered"))["object"]
}

fn kinds(manifests: &[Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = manifests
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    kinds
}

fn config_map_file(manifests: &[Value], key: &str) -> String {
    object(manifests, "ConfigMap")["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("the ConfigMap has no {key}"))
        .to_string()
}

#[test]
fn the_chart_passes_helm_lint_strict_with_its_defaults_and_with_a_bucket() {
    let Some(helm) = helm() else { return };
    for values in [
        None,
        Some(deploy(BUCKET_VALUES)),
        Some(deploy(TLS_AUTH_VALUES)),
    ] {
        let mut command = Command::new(&helm);
        command
            .args(["lint", "--strict", "--kube-version", "1.34.0"])
            .arg(deploy("helm/ferry"));
        if let Some(values) = &values {
            command.arg("-f").arg(values);
        }
        let output = run(&mut command);
        assert!(
            output.status.success() && stdout(&output).contains("0 chart(s) failed"),
            "{values:?}: {}{}",
            stdout(&output),
            stderr(&output)
        );
    }
}

#[test]
fn the_rendered_chart_decodes_strictly_into_the_kubernetes_types_with_the_promised_settings() {
    let (Some(helm), Some(check)) = (helm(), deploy_check()) else {
        return;
    };
    let default = render(&helm, &check, &[]);
    assert_eq!(
        kinds(&default),
        [
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount"
        ]
    );
    let bucket_values = deploy(BUCKET_VALUES);
    let bucket = render(&helm, &check, &["-f", bucket_values.to_str().unwrap()]);
    assert_eq!(
        kinds(&bucket),
        [
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ]
    );
    assert_eq!(object(&default, "Deployment")["spec"]["replicas"], 1);
    assert_eq!(
        object(&default, "Deployment")["spec"]["strategy"]["type"],
        "Recreate",
        "one pod at a time on the file store's volume"
    );
    assert_eq!(object(&bucket, "Deployment")["spec"]["replicas"], 3);
    assert_eq!(
        object(&bucket, "ServiceMonitor")["spec"]["endpoints"][0]["path"],
        "/metrics"
    );
    let tls_values = deploy(TLS_AUTH_VALUES);
    let secured = render(&helm, &check, &["-f", tls_values.to_str().unwrap()]);
    assert_eq!(
        kinds(&secured),
        [
            "ConfigMap",
            "Deployment",
            "Ingress",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount"
        ]
    );
    for manifests in [&default, &bucket, &secured] {
        assert_pod_settings(manifests);
    }
    assert_secured_settings(&secured);

    // Prometheus scrapes a Ferry that serves TLS over HTTPS, with the tlsConfig given.
    let endpoint =
        |manifests: &[Value]| object(manifests, "ServiceMonitor")["spec"]["endpoints"][0].clone();
    assert!(
        endpoint(&bucket)["scheme"].is_null(),
        "{}",
        endpoint(&bucket)
    );
    let scraped = render(
        &helm,
        &check,
        &[
            "-f",
            tls_values.to_str().unwrap(),
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.serviceMonitor.tlsConfig.serverName=ferry.modules.svc",
        ],
    );
    assert_eq!(endpoint(&scraped)["scheme"], "https");
    assert_eq!(
        endpoint(&scraped)["tlsConfig"]["serverName"],
        "ferry.modules.svc"
    );
}

/// With TLS, authentication and an Ingress ([`TLS_AUTH_VALUES`], whose values these are): the probes speak
/// HTTPS; ferry.toml's certificate, key and users are files of the Secrets the values name, mounted where
/// ferry.toml points; the trusted proxies are the values'; the Ingress serves the values' host over TLS and
/// sends it to the Service's port.
fn assert_secured_settings(manifests: &[Value]) {
    let values = serde_json::json!({
        "tls": {"secretName": "ferry-tls"},
        "auth": {"secretName": "ferry-users"},
        "trustedProxies": ["10.0.0.0/8"],
        "ingress": {
            "className": "nginx",
            "host": "goproxy.example.com",
            "tlsSecretName": "goproxy-example-com-tls"
        }
    });
    let written = read(&deploy(TLS_AUTH_VALUES));
    for value in [
        "ferry-tls",
        "ferry-users",
        "10.0.0.0/8",
        "goproxy.example.com",
        "goproxy-example-com-tls",
    ] {
        assert!(written.contains(value), "{TLS_AUTH_VALUES} sets {value}");
    }
    let ferry_toml = toml_value(&config_map_file(manifests, "ferry.toml"));
    let pod = &object(manifests, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }
    // Each file ferry.toml names is in a volume of the Secret the values name, under the key it reads.
    let secret_file = |setting: &str| {
        let path = ferry_toml[setting]
            .as_str()
            .unwrap_or_else(|| panic!("no {setting}"));
        let (dir, file) = path.rsplit_once('/').unwrap();
        let mounts = container["volumeMounts"].as_array().unwrap();
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == dir)
            .unwrap_or_else(|| panic!("{dir}"));
        assert_eq!(mount["readOnly"], true, "{dir}");
        let volumes = pod["volumes"].as_array().unwrap();
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        let items = volume["secret"]["items"].as_array().unwrap();
        let item = items
            .iter()
            .find(|i| i["path"] == file)
            .unwrap_or_else(|| panic!("{file}"));
        (
            volume["secret"]["secretName"].as_str().unwrap().to_string(),
            item["key"].as_str().unwrap().to_string(),
        )
    };
    let tls_secret = values["tls"]["secretName"].as_str().unwrap();
    assert_eq!(
        secret_file("tls_cert"),
        (tls_secret.to_string(), "tls.crt".to_string())
    );
    assert_eq!(
        secret_file("tls_key"),
        (tls_secret.to_string(), "tls.key".to_string())
    );
    assert_eq!(
        secret_file("auth_file"),
        (
            values["auth"]["secretName"].as_str().unwrap().to_string(),
            "htpasswd".to_string()
        )
    );
    assert_eq!(
        serde_json::to_value(&ferry_toml["trusted_proxies"]).unwrap(),
        values["trustedProxies"]
    );
    let service = object(manifests, "Service");
    assert_eq!(service["spec"]["ports"][0]["appProtocol"], "https");
    let ingress = &object(manifests, "Ingress")["spec"];
    let host = values["ingress"]["host"].as_str().unwrap();
    assert_eq!(ingress["rules"][0]["host"], host);
    assert_eq!(ingress["tls"][0]["hosts"][0], host);
    assert_eq!(
        ingress["tls"][0]["secretName"],
        values["ingress"]["tlsSecretName"]
    );
    assert_eq!(ingress["ingressClassName"], values["ingress"]["className"]);
    let backend = &ingress["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], service["metadata"]["name"]);
    assert_eq!(backend["port"]["name"], service["spec"]["ports"][0]["name"]);
}

/// What every rendering's pod must carry: probes, the grace period above the drain, a non-root
/// read-only container, the work dir on an emptyDir where ferry.toml puts it, the config where
/// FERRY_CONFIG points, and the store's volume where a file store's URL points.
fn assert_pod_settings(manifests: &[Value]) {
    let ferry_toml = toml_value(&config_map_file(manifests, "ferry.toml"));
    let pod = &object(manifests, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let drain = shutdown_timeout(&config_map_file(manifests, "ferry.toml"));
    assert!(grace > drain.as_secs(), "grace {grace} s, drain {drain:?}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert!(container["resources"]["requests"]["memory"].is_string());

    let mount_of = |path: &str| {
        let mounts = container["volumeMounts"].as_array().unwrap();
        let mount = mounts.iter().find(|m| m["mountPath"] == path);
        let name = &mount.unwrap_or_else(|| panic!("nothing mounted at {path}"))["name"];
        let volumes = pod["volumes"].as_array().unwrap();
        volumes.iter().find(|v| v["name"] == *name).unwrap().clone()
    };
    let work_dir = ferry_toml["fetcher"]["work_dir"].as_str().unwrap();
    assert!(mount_of(work_dir)["emptyDir"].is_object(), "{work_dir}");
    let env = container["env"].as_array().unwrap();
    let config = env.iter().find(|e| e["name"] == "FERRY_CONFIG").unwrap()["value"]
        .as_str()
        .unwrap();
    let config_dir = Path::new(config).parent().unwrap().to_str().unwrap();
    assert!(mount_of(config_dir)["configMap"].is_object());
    let storage = ferry_toml["storage"].as_str().unwrap();
    if let Some(path) = storage.strip_prefix("file://") {
        assert!(
            mount_of(path)["persistentVolumeClaim"].is_object(),
            "{path}"
        );
    }
}

#[test]
fn the_manifest_check_refuses_a_misspelt_field_and_an_unknown_kind() {
    let (Some(helm), Some(check)) = (helm(), deploy_check()) else {
        return;
    };
    let rendered = helm_template(&helm, &[]).unwrap();
    assert!(checked_manifests(&check, &rendered).is_ok());
    // encoding/json alone would take this for readOnlyRootFilesystem (it matches names case-insensitively).
    let misspelt = rendered.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:");
    let error = checked_manifests(&check, &misspelt).unwrap_err();
    assert!(
        error.contains("unknown field \"spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem\""),
        "{error}"
    );
    let unknown_kind =
        format!("{rendered}\n---\napiVersion: v1\nkind: Podd\nmetadata:\n  name: x\n");
    let error = checked_manifests(&check, &unknown_kind).unwrap_err();
    assert!(error.contains("Podd"), "{error}");
}

#[test]
fn helm_refuses_values_that_the_values_schema_rejects() {
    let Some(helm) = helm() else { return };
    for (set, complaint) in [
        ("storage.url=ftp://modules", "/storage/url"),
        ("replicaCount=0", "/replicaCount"),
        ("config.logFormat=xml", "/config/logFormat"),
        ("replicas=3", "replicas"),
        ("trustedProxies={ingress-nginx}", "/trustedProxies/0"),
        ("ingress.hosts={a}", "ingress"),
        ("tls.secret=x", "tls"),
    ] {
        let error = helm_template(&helm, &["--set", set]).unwrap_err();
        assert!(
            error.contains("values don't meet the specifications of the schema")
                && error.contains(complaint),
            "--set {set}: {error}"
        );
    }
}

#[test]
fn the_chart_refuses_an_ingress_without_a_host() {
    let Some(helm) = helm() else { return };
    let error = helm_template(&helm, &["--set", "ingress.enabled=true"]).unwrap_err();
    assert!(
        error.contains("ingress.host is required when ingress.enabled is true"),
        "{error}"
    );
}

#[test]
fn the_chart_refuses_more_than_one_replica_on_a_file_store() {
    let Some(helm) = helm() else { return };
    let error = helm_template(&helm, &["--set", "replicaCount=2"]).unwrap_err();
    assert!(
        error.contains("replicaCount is 2 but storage.url is empty"),
        "{error}"
    );
    let bucket = [
        "--set",
        "replicaCount=2",
        "--set",
        "storage.url=s3://modules",
    ];
    assert!(helm_template(&helm, &bucket).is_ok());
}

#[test]
fn a_configuration_change_rolls_the_pods_through_the_checksum_annotation() {
    let (Some(helm), Some(check)) = (helm(), deploy_check()) else {
        return;
    };
    let checksum = |args: &[&str]| {
        let manifests = render(&helm, &check, args);
        let template = &object(&manifests, "Deployment")["spec"]["template"];
        template["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = checksum(&[]);
    assert_eq!(before.len(), 64, "a sha256: {before}");
    assert_eq!(checksum(&[]), before, "the same values, the same pods");
    assert_ne!(
        checksum(&["--set", "config.downloadFile=mode = \"none\""]),
        before
    );
    assert_ne!(
        checksum(&["--set", "config.shutdownTimeoutSeconds=60"]),
        before
    );
}

#[test]
fn the_charts_rendered_configurations_start_ferry_ready() {
    let (Some(helm), Some(check)) = (helm(), deploy_check()) else {
        return;
    };
    let default = render(&helm, &check, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (_ferry, _) = start_config(
        dir.path(),
        &config_map_file(&default, "ferry.toml"),
        &config_map_file(&default, "download.hcl"),
        &BTreeMap::new(),
    );

    // The bucket values against the S3 test server: its address and key come in through the environment,
    // as the chart's credentials Secret brings them; the bucket too, since the test server has its own.
    let Some(s3) = ferry_testkit::s3_server() else {
        return;
    };
    let bucket_values = deploy(BUCKET_VALUES);
    let bucket = render(&helm, &check, &["-f", bucket_values.to_str().unwrap()]);
    let mut env: BTreeMap<String, String> = s3.env.iter().cloned().collect();
    env.insert("FERRY_STORAGE".into(), s3.fresh_url());
    let dir = tempfile::tempdir().unwrap();
    let (_ferry, _) = start_config(
        dir.path(),
        &config_map_file(&bucket, "ferry.toml"),
        &config_map_file(&bucket, "download.hcl"),
        &env,
    );
}

/// The chart with TLS and authentication: its rendered ferry.toml, with the Secrets' files where the pod
/// mounts them (a test CA's certificate, an htpasswd line), starts Ferry serving HTTPS; the probe the pod
/// runs (`/readyz` over HTTPS) passes, a request without credentials is 401 and one with them is served.
#[test]
fn the_charts_tls_and_auth_configuration_starts_ferry_over_https_with_its_users() {
    let (Some(helm), Some(check)) = (helm(), deploy_check()) else {
        return;
    };
    let values = deploy(TLS_AUTH_VALUES);
    let manifests = render(&helm, &check, &["-f", values.to_str().unwrap()]);
    let ferry_toml = config_map_file(&manifests, "ferry.toml");
    let root = tempfile::tempdir().unwrap();
    let settings = toml_value(&rooted(&ferry_toml, root.path()));
    let path_of = |setting: &str| PathBuf::from(settings[setting].as_str().unwrap());
    for setting in ["tls_cert", "auth_file"] {
        std::fs::create_dir_all(path_of(setting).parent().unwrap()).unwrap();
    }
    // The Secrets' files, as `kubectl create secret tls` and `--from-file=htpasswd=` would hold them.
    let ca = ferry_testkit::TestCa::new("Ferry test CA");
    let ca_file = ca.write(root.path(), "ca.pem");
    let pair = ca.issue(root.path(), "issued");
    std::fs::copy(&pair.cert, path_of("tls_cert")).unwrap();
    std::fs::copy(&pair.key, path_of("tls_key")).unwrap();
    std::fs::write(
        path_of("auth_file"),
        ferry_testkit::htpasswd_line("builder", "s3cret"),
    )
    .unwrap();

    let etc = root.path().join("etc/ferry");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/ferry")).unwrap();
    let config = write_file(&etc, "ferry.toml", &rooted(&ferry_toml, root.path()));
    write_file(
        &etc,
        "download.hcl",
        &config_map_file(&manifests, "download.hcl"),
    );
    let mut command = ferry();
    command
        .current_dir(root.path())
        .env("HOME", root.path())
        .env("FERRY_CONFIG", &config)
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (process, addr) = serving(command);
    assert!(process.log().contains("serving HTTPS"), "{}", process.log());
    assert!(
        !process.log().contains("serves plain HTTP"),
        "no warning: {}",
        process.log()
    );

    // The pod's probes: /readyz and /healthz over HTTPS, on the container's port.
    let pod = &object(&manifests, "Deployment")["spec"]["template"]["spec"];
    let ca_path = ca_file.display().to_string();
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &pod["containers"][0][probe]["httpGet"];
        let url = format!(
            "{}://{addr}{}",
            get["scheme"].as_str().unwrap().to_lowercase(),
            get["path"].as_str().unwrap()
        );
        let output = run(ferry().args(["healthcheck", "--ca", &ca_path, &url]));
        assert!(
            output.status.success(),
            "{url}: {}{}",
            stderr(&output),
            process.log()
        );
    }
    // /metrics on the main listener needs credentials and fetches nothing.
    let status = |credentials: &[&str]| {
        let mut args = vec![
            "--cacert",
            &ca_path,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ];
        args.extend(credentials);
        let url = format!("https://{addr}/metrics");
        args.push(&url);
        stdout(&ferry_testkit::curl(&args))
    };
    assert_eq!(status(&[]), "401");
    assert_eq!(status(&["-u", "builder:wrong"]), "401");
    assert_eq!(status(&["-u", "builder:s3cret"]), "200");
}

// ---------------------------------------------------------------------------------------------------------
// Download files and configuration files

#[test]
fn every_download_file_under_deploy_and_in_the_chart_is_valid_without_warnings() {
    let files = files_ending(".hcl");
    assert!(files.len() >= 2, "{files:?}");
    for file in &files {
        assert_valid_download_file(file);
    }
    let (Some(helm), Some(check)) = (helm(), deploy_check()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket_values = deploy(BUCKET_VALUES);
    for (name, args) in [
        ("default", vec![]),
        ("bucket", vec!["-f", bucket_values.to_str().unwrap()]),
    ] {
        let manifests = render(&helm, &check, &args);
        let file = write_file(
            dir.path(),
            name,
            &config_map_file(&manifests, "download.hcl"),
        );
        assert_valid_download_file(&file);
    }
}

#[test]
fn every_ferry_toml_under_deploy_loads_with_its_download_file() {
    let files = files_ending(".toml");
    assert_eq!(
        files,
        [deploy("systemd/ferry.toml")],
        "a new file needs a test starting it"
    );
    for file in files {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/ferry");
        std::fs::create_dir_all(&etc).unwrap();
        let config = write_file(&etc, "ferry.toml", &rooted(&read(&file), root.path()));
        std::fs::copy(
            file.with_file_name("download.hcl"),
            etc.join("download.hcl"),
        )
        .unwrap();
        // `policy check` loads the whole configuration, as `serve` does, then answers for one module.
        let output = run(ferry()
            .args(["policy", "check", "--config"])
            .arg(&config)
            .args(["example.com/a", "internal.example/frozen/b"]));
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            stderr(&output)
        );
        let answer = stdout(&output);
        assert!(
            answer.contains("example.com/a") && answer.contains(" sync "),
            "{answer}"
        );
        assert!(answer.contains(" none "), "{answer}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// systemd

/// The unit's `Key=Value` lines (the last of each key; `Environment` lines all, in order).
fn unit_settings(unit: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut settings = BTreeMap::new();
    let mut environment = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key == "Environment" {
                environment.push(value.to_string());
            }
            settings.insert(key.to_string(), value.to_string());
        }
    }
    (settings, environment)
}

/// `systemd-analyze verify` of `unit` (its text) with ExecStart's binary replaced by the built `ferry`
/// (verify checks that it exists); its complaints, empty when there are none.
fn verify_unit(analyze: &Path, unit: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit.replace(
        "/usr/local/bin/ferry ",
        &format!("{} ", env!("CARGO_BIN_EXE_ferry")),
    );
    let file = write_file(dir.path(), "ferry.service", &unit);
    let output = run(Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&file));
    // verify exits 0 on warnings (an unknown key) and non-zero on errors: both are complaints here.
    match output.status.success() {
        true => stderr(&output),
        false => format!("{}: {}", output.status, stderr(&output)),
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool_path("systemd-analyze", "FERRY_TEST_SYSTEMD_ANALYZE") else {
        return;
    };
    let unit = read(&deploy("systemd/ferry.service"));
    assert_eq!(verify_unit(&analyze, &unit), "");
    // The check is listening: a misspelt key is reported.
    let misspelt = unit.replace("TimeoutStopSec=", "TimeoutStopSecs=");
    assert!(verify_unit(&analyze, &misspelt).contains("Unknown key"));
}

#[test]
fn the_systemd_unit_outwaits_the_drain_lets_ferry_stop_its_children_and_reloads_with_sighup() {
    let unit = read(&deploy("systemd/ferry.service"));
    let ferry_toml = read(&deploy("systemd/ferry.toml"));
    let (settings, _) = unit_settings(&unit);
    assert!(duration(&settings["TimeoutStopSec"]) > shutdown_timeout(&ferry_toml));
    assert_eq!(settings["KillMode"], "mixed");
    assert_eq!(settings["KillSignal"], "SIGTERM");
    assert_eq!(settings["ExecReload"], "/bin/kill -HUP $MAINPID");
    assert_eq!(
        settings["ExecStart"],
        "/usr/local/bin/ferry serve --config /etc/ferry/ferry.toml"
    );
    let state = format!("/var/lib/{}", settings["StateDirectory"]);
    let storage = toml_value(&ferry_toml)["storage"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        storage.starts_with(&format!("file://{state}/")),
        "{storage} in {state}"
    );
    for key in ["NoNewPrivileges", "PrivateTmp", "DynamicUser"] {
        assert_eq!(settings[key], "yes", "{key}");
    }
    assert_eq!(settings["ProtectSystem"], "strict");
    assert!(settings["LimitNOFILE"].parse::<u32>().unwrap() >= 65536);
}

#[test]
fn the_systemd_setup_starts_ferry_ready_and_reloads_its_download_file_on_sighup() {
    let root = tempfile::tempdir().unwrap();
    let (_, environment) = unit_settings(&read(&deploy("systemd/ferry.service")));
    // The unit's Environment= lines, then its EnvironmentFile's uncommented ones, as systemd applies them.
    let env_file = read(&deploy("systemd/ferry.env"));
    let assignments = environment.iter().map(String::as_str).chain(
        env_file
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#')),
    );
    let env: BTreeMap<String, String> = assignments
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            (name.to_string(), rooted(value, root.path()))
        })
        .collect();
    assert!(
        env["PATH"]
            .split(':')
            .any(|dir| Path::new(dir).join("go").is_file()),
        "go on the unit's PATH"
    );
    let (process, addr) = start_config(
        root.path(),
        &read(&deploy("systemd/ferry.toml")),
        &read(&deploy("systemd/download.hcl")),
        &env,
    );
    process.signal("-HUP");
    process.wait_for("the reload", || {
        process.log().contains("download policy reloaded")
    });
    assert_ready(&process, &addr);
}

// ---------------------------------------------------------------------------------------------------------
// Docker

/// A Dockerfile as BuildKit's parser reads it (ferry-deploy-check: a bad flag, instruction or lint finding
/// fails): its ARGs, stages, and the final image's settings.
fn dockerfile(check: &Path, path: &Path) -> Result<Value, String> {
    let output = run(Command::new(check).arg("dockerfile").arg(path));
    match output.status.success() {
        true => Ok(serde_json::from_str(&stdout(&output)).unwrap()),
        false => Err(stderr(&output)),
    }
}

fn strings(value: &Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"))
}

#[test]
fn the_image_builds_with_the_workspace_toolchain_and_keeps_target_out_of_the_context() {
    let Some(check) = deploy_check() else { return };
    let image = dockerfile(&check, &deploy("docker/Dockerfile")).unwrap();
    let workspace = toml_value(&read(&repo().join("Cargo.toml")));
    let rust_version = &workspace["workspace"]["package"]["rust-version"];
    assert_eq!(
        image["args"]["RUST_VERSION"].as_str(),
        rust_version.as_str()
    );
    let build = &image["stages"][0];
    assert!(
        build["base"]
            .as_str()
            .unwrap()
            .starts_with("rust:${RUST_VERSION}-")
    );
    let runs: Vec<String> = image["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| strings(&s["runs"]))
        .collect();
    let runs = runs.join("\n");
    assert!(runs.contains("cargo build --release --locked"), "{runs}");
    for package in ["git", "openssh-client", "ca-certificates", "tini"] {
        assert!(
            runs.contains(&format!(" {package} ")),
            "{package} installed: {runs}"
        );
    }
    let user = image["user"].as_str().unwrap();
    assert!(
        !user.is_empty() && !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert_eq!(
        strings(&image["entrypoint"])[..2],
        ["/usr/bin/tini", "--"],
        "tini is PID 1"
    );
    assert_eq!(image["stopsignal"], "SIGTERM");
    let dockerignore = read(&repo().join(".dockerignore"));
    assert!(dockerignore.lines().any(|l| l == "target/"));

    // The GCS emulator image of the compose file builds the version the tests run.
    let emulator = dockerfile(&check, &deploy("compose/fake-gcs-server.Dockerfile")).unwrap();
    let servers = read(&repo().join("scripts/test-servers.sh"));
    let version = servers
        .lines()
        .find_map(|l| l.strip_prefix("FAKE_GCS_SERVER_VERSION="))
        .unwrap();
    assert_eq!(
        emulator["stages"][0]["args"]["FAKE_GCS_SERVER_VERSION"],
        version
    );
}

/// One rustls crypto provider, ring, in everything the workspace builds (the image's build included): no
/// aws-lc-rs, whose C library would need its toolchain in the build (see the workspace Cargo.toml).
#[test]
fn the_workspace_locks_one_crypto_provider_ring_and_no_aws_lc() {
    let lock = toml_value(&read(&repo().join("Cargo.lock")));
    let names: Vec<&str> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ring"), "ring is locked");
    for absent in ["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys"] {
        assert!(!names.contains(&absent), "{absent} is locked");
    }
}

#[test]
fn the_dockerfile_check_refuses_a_misspelt_flag_and_a_lint_finding() {
    let Some(check) = deploy_check() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ours = read(&deploy("docker/Dockerfile"));
    let misspelt = write_file(
        dir.path(),
        "flag",
        &ours.replace("--start-period=", "--start-periode="),
    );
    let error = dockerfile(&check, &misspelt).unwrap_err();
    assert!(error.contains("unknown flag: --start-periode"), "{error}");
    let casing = write_file(
        dir.path(),
        "casing",
        &ours.replace(" AS build", " as build"),
    );
    let error = dockerfile(&check, &casing).unwrap_err();
    assert!(error.contains("FromAsCasing"), "{error}");
}

#[test]
fn the_images_settings_start_ferry_and_its_healthcheck_command_passes() {
    let Some(check) = deploy_check() else { return };
    let image = dockerfile(&check, &deploy("docker/Dockerfile")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let path = std::env::var("PATH").unwrap();
    let image_env: BTreeMap<String, String> = image["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| {
            let value = value.as_str().unwrap().replace("$PATH", &path);
            (name.clone(), rooted(&value, root.path()))
        })
        .collect();
    assert_eq!(image_env["FERRY_LOG_FORMAT"], "json");
    assert_eq!(image_env["FERRY_LISTEN"], "0.0.0.0:3000");
    // Started as the image starts it (ENTRYPOINT's ferry with CMD), but on 127.0.0.1 and an OS-picked port.
    let entrypoint = strings(&image["entrypoint"]);
    assert!(entrypoint.last().unwrap().ends_with("/ferry"));
    let mut command = ferry();
    command
        .args(strings(&image["cmd"]))
        .current_dir(root.path())
        .envs(&image_env)
        .env("FERRY_LISTEN", "127.0.0.1:0");
    let (process, addr) = serving(command);
    assert_ready(&process, &addr);

    // HEALTHCHECK CMD ["ferry", ...], run with the image's environment and Ferry's real port.
    let probe = strings(&image["healthcheck"]);
    assert_eq!(probe[..3], ["CMD", "ferry", "healthcheck"]);
    let port = addr.rsplit(':').next().unwrap();
    let output = run(ferry()
        .args(&probe[2..])
        .envs(&image_env)
        .env("FERRY_LISTEN", format!("0.0.0.0:{port}")));
    assert!(
        output.status.success(),
        "{}{}",
        stderr(&output),
        process.log()
    );
}

// ---------------------------------------------------------------------------------------------------------
// Compose

/// The compose file as compose-go loads it (validated against the compose specification), resolved with
/// `profiles`.
fn compose_project(check: &Path, profiles: &[&str]) -> Value {
    let output = run(Command::new(check)
        .arg("compose")
        .arg(deploy("compose/compose.yaml"))
        .args(profiles));
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

#[test]
fn the_compose_file_is_valid_and_orders_its_services_by_health_and_completion() {
    let Some(check) = deploy_check() else { return };
    let project = compose_project(&check, &["gcs", "tls"]);
    let services = &project["services"];
    for (service, store, job) in [
        ("ferry", "minio", "create-bucket"),
        ("ferry-gcs", "gcs", "create-gcs-bucket"),
        ("ferry-tls", "minio", "create-bucket"),
    ] {
        let ferry = &services[service];
        assert_eq!(ferry["depends_on"][store]["condition"], "service_healthy");
        assert_eq!(
            ferry["depends_on"][job]["condition"],
            "service_completed_successfully"
        );
        assert!(
            services[store]["healthcheck"]["test"].is_array(),
            "{store} has a health check"
        );
        let probe = ferry["healthcheck"]["test"].as_array().unwrap();
        assert_eq!(probe[..3], ["CMD", "ferry", "healthcheck"]);
        let env = &ferry["environment"];
        let drain = env["FERRY_SHUTDOWN_TIMEOUT"]
            .as_str()
            .map_or(Duration::from_secs(30), duration);
        let grace = duration(ferry["stop_grace_period"].as_str().unwrap());
        assert!(grace > drain, "{service}: {grace:?} <= {drain:?}");
        assert!(
            env["FERRY_DOWNLOAD_MODE"]
                .as_str()
                .unwrap()
                .starts_with("file:")
        );
    }
    // Without the profile the GCS services are not part of the project.
    let project = compose_project(&check, &[]);
    assert!(project["services"]["ferry-gcs"].is_null());
    assert!(project["services"]["ferry-tls"].is_null());
    assert!(project["services"]["ferry"].is_object());
    // A key the compose specification does not have is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad =
        read(&deploy("compose/compose.yaml")).replace("stop_grace_period:", "stop_grace_periode:");
    let file = write_file(dir.path(), "compose.yaml", &bad);
    let output = run(Command::new(&check).arg("compose").arg(&file));
    assert!(
        !output.status.success() && stderr(&output).contains("stop_grace_periode"),
        "{}",
        stderr(&output)
    );
}

/// A compose service's environment for a Ferry run here: every variable as the file sets it, except what
/// names the compose network or the container: the store's address and credentials become the test
/// server's (each must be set by the file), the bucket a fresh prefix of the test server's, mounted paths
/// their host sources (bind mounts) or directories under `root` (volumes), and the listen address
/// 127.0.0.1:0.
fn compose_env(service: &Value, server: &CloudServer, root: &Path) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = service["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_string()))
        .collect();
    let mut mounts: Vec<(String, String)> = service["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let target = v["target"].as_str().unwrap().to_string();
            let source = match v["type"].as_str().unwrap() {
                "bind" => v["source"].as_str().unwrap().to_string(),
                _ => root
                    .join(v["source"].as_str().unwrap())
                    .display()
                    .to_string(),
            };
            (target, source)
        })
        .collect();
    mounts.sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
    for value in env.values_mut() {
        if let Some((target, source)) = mounts.iter().find(|(t, _)| value.contains(t.as_str())) {
            *value = value.replace(target.as_str(), source);
        }
    }
    for (name, value) in &server.env {
        assert!(env.contains_key(name), "the service sets {name}");
        let value = match name.as_str() {
            "GOOGLE_SERVICE_ACCOUNT" => emulator_account(&env[name], server, root),
            _ => value.clone(),
        };
        env.insert(name.clone(), value);
    }
    let storage = &env["FERRY_STORAGE"];
    assert!(
        storage.starts_with(&format!("{}://", server.scheme)),
        "{storage}"
    );
    env.insert("FERRY_STORAGE".into(), server.fresh_url());
    env.insert("FERRY_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("HOME".into(), root.display().to_string());
    env
}

/// Runs compose's `service` with its own environment against `server`, fetches a module through it with
/// the go command (from a fixture upstream: the compose file leaves go's default upstream, out of reach
/// here), checks that the download file is in force, that the version is in the store, and that the
/// service's health check command passes.
fn run_compose_service(check: &Path, profiles: &[&str], service: &str, server: CloudServer) {
    let project = compose_project(check, profiles);
    let spec = &project["services"][service];
    let root = tempfile::tempdir().unwrap();
    let mut env = compose_env(spec, &server, root.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let wanted = FixtureModule::package("example.com/deploy/hello", "v1.0.0");
    let frozen = FixtureModule::package("internal.example/frozen/lib", "v1.0.0");
    let upstream = runtime.block_on(Upstream::start(vec![wanted.clone(), frozen.clone()]));
    env.insert("GOPROXY".into(), upstream.url());
    env.insert("GOSUMDB".into(), "off".into());

    let mut command = ferry();
    command.current_dir(root.path()).envs(&env);
    let (process, addr) = serving(command);
    assert_ready(&process, &addr);
    let go = GoHome::new(root.path(), &format!("http://{addr}"));
    let fetched = go.run(
        root.path(),
        &[
            "mod",
            "download",
            "-json",
            "example.com/deploy/hello@v1.0.0",
        ],
    );
    assert!(fetched.contains("\"Version\": \"v1.0.0\""), "{fetched}");
    let refused = run(&mut go.command(
        root.path(),
        &[
            "mod",
            "download",
            "-json",
            "internal.example/frozen/lib@v1.0.0",
        ],
    ));
    let said = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(
        !refused.status.success() && said.contains("not found"),
        "{said}"
    );
    let asked = upstream.requests();
    assert!(
        !asked.iter().any(|r| r.contains("frozen")),
        "the download file's none block: {asked:?}"
    );

    let config = ferry::config::load(&ferry::config::Flags::default(), &env).unwrap();
    let store = config.storage.open().unwrap();
    assert!(runtime.block_on(is_stored(
        store.as_ref(),
        "example.com/deploy/hello",
        "v1.0.0"
    )));

    let probe: Vec<String> = serde_json::from_value(spec["healthcheck"]["test"].clone()).unwrap();
    let port = addr.rsplit(':').next().unwrap();
    let listen = spec["environment"]["FERRY_LISTEN"]
        .as_str()
        .unwrap()
        .replace(":3000", &format!(":{port}"));
    let output = run(ferry().args(&probe[2..]).env("FERRY_LISTEN", listen));
    assert!(output.status.success(), "{}", stderr(&output));
}

/// The compose file's service-account file (`account`, the host side of its mount), pointing at the test
/// emulator instead of the compose network's `gcs` host.
fn emulator_account(account: &str, server: &CloudServer, root: &Path) -> String {
    let mut key: Value = serde_json::from_str(&read(Path::new(account))).unwrap();
    assert!(
        key["gcs_base_url"].is_string() && key["disable_oauth"] == true,
        "{key}"
    );
    key["gcs_base_url"] = Value::String(server.endpoint.clone());
    write_file(root, "gcs-service-account.json", &key.to_string())
        .display()
        .to_string()
}

#[test]
fn the_compose_ferry_serves_the_go_command_from_s3_with_the_files_own_settings() {
    let Some(check) = deploy_check() else { return };
    let Some(s3) = ferry_testkit::s3_server() else {
        return;
    };
    run_compose_service(&check, &[], "ferry", s3);
}

#[test]
fn the_compose_gcs_profile_serves_the_go_command_from_the_gcs_emulator() {
    let Some(check) = deploy_check() else { return };
    let Some(gcs) = ferry_testkit::gcs_server() else {
        return;
    };
    run_compose_service(&check, &["gcs"], "ferry-gcs", gcs);
}

/// The compose file's `tls` profile: its `ferry-tls` service run with its own environment against the S3
/// server, the files of its `./secrets` mount made here (a test CA's certificate for 127.0.0.1, an htpasswd
/// line): the service's health check command passes over HTTPS (trusting the certificate Ferry serves),
/// and the real go command fetches through it over HTTPS with its credentials in .netrc, or gets 401
/// without them.
#[test]
fn the_compose_tls_profile_serves_the_go_command_over_https_with_authentication() {
    let Some(check) = deploy_check() else { return };
    let Some(s3) = ferry_testkit::s3_server() else {
        return;
    };
    let project = compose_project(&check, &["tls"]);
    let spec = &project["services"]["ferry-tls"];
    let root = tempfile::tempdir().unwrap();
    let mut env = compose_env(spec, &s3, root.path());
    // The ./secrets bind mount: its files are made here, not in the repository.
    let volumes = spec["volumes"].as_array().unwrap();
    let secrets = volumes
        .iter()
        .find(|v| v["target"] == "/etc/ferry/secrets")
        .expect("the secrets mount");
    let source = secrets["source"].as_str().unwrap();
    let made = root.path().join("secrets");
    std::fs::create_dir_all(&made).unwrap();
    for value in env.values_mut() {
        *value = value.replace(source, &made.display().to_string());
    }
    let path = |name: &str| PathBuf::from(&env[name]);
    for name in ["FERRY_TLS_CERT", "FERRY_TLS_KEY", "FERRY_AUTH_FILE"] {
        assert!(path(name).starts_with(&made), "{name}: {}", env[name]);
    }
    let ca = ferry_testkit::TestCa::new("Ferry test CA");
    let ca_file = ca.write(root.path(), "ca.pem");
    let pair = ca.issue(root.path(), "issued");
    std::fs::copy(&pair.cert, path("FERRY_TLS_CERT")).unwrap();
    std::fs::copy(&pair.key, path("FERRY_TLS_KEY")).unwrap();
    std::fs::write(
        path("FERRY_AUTH_FILE"),
        ferry_testkit::htpasswd_line("builder", "s3cret"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let wanted = FixtureModule::package("example.com/deploy/hello", "v1.0.0");
    let upstream = runtime.block_on(Upstream::start(vec![wanted]));
    env.insert("GOPROXY".into(), upstream.url());
    env.insert("GOSUMDB".into(), "off".into());

    let mut command = ferry();
    command.current_dir(root.path()).envs(&env);
    let (process, addr) = serving(command);
    process.wait_for("the serving line", || {
        process.log().contains("\"scheme\":\"https\"")
    });

    // The service's health check, with the service's FERRY_TLS_CERT and FERRY_LISTEN (on Ferry's real port).
    let probe: Vec<String> = serde_json::from_value(spec["healthcheck"]["test"].clone()).unwrap();
    let port = addr.rsplit(':').next().unwrap();
    let listen = spec["environment"]["FERRY_LISTEN"]
        .as_str()
        .unwrap()
        .replace(":3000", &format!(":{port}"));
    let output = run(ferry()
        .args(&probe[2..])
        .env("FERRY_LISTEN", listen)
        .env("FERRY_TLS_CERT", &env["FERRY_TLS_CERT"]));
    assert!(
        output.status.success(),
        "{}{}",
        stderr(&output),
        process.log()
    );
    assert!(stdout(&output).starts_with(&format!("https://127.0.0.1:{port}/readyz: ")));

    // The go command over HTTPS, trusting the CA, with and without its credentials.
    let go = GoHome::new(root.path(), &format!("https://{addr}"));
    let netrc = write_file(
        root.path(),
        "netrc",
        &format!("machine {addr} login builder password s3cret\n"),
    );
    let download = [
        "mod",
        "download",
        "-json",
        "example.com/deploy/hello@v1.0.0",
    ];
    let mut with_netrc = go.command(root.path(), &download);
    with_netrc
        .env("SSL_CERT_FILE", &ca_file)
        .env("NETRC", &netrc);
    let fetched = run(&mut with_netrc);
    assert!(
        fetched.status.success() && stdout(&fetched).contains("\"Version\": \"v1.0.0\""),
        "{}{}",
        stdout(&fetched),
        stderr(&fetched)
    );
    let mut without = go.command(root.path(), &download);
    without
        .env("SSL_CERT_FILE", &ca_file)
        .env("NETRC", root.path().join("no-netrc"))
        .env("GOFLAGS", "-modcacherw")
        .env("GOMODCACHE", root.path().join("empty-cache"));
    let refused = run(&mut without);
    let said = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(
        !refused.status.success() && said.contains("401 Unauthorized"),
        "{said}"
    );
}
