"""Checks of deploy/: the Dockerfile, the compose file, the Kubernetes manifests, the topics.

The Kubernetes manifests are rendered with ``kubectl kustomize`` where a kubectl exists, and
every rendered object (and every YAML file on its own) is validated against the Kubernetes
OpenAPI schemas bundled in the ``kubernetes-validate`` package (offline). On top of the
schemas, the rules of deploy/README.md: probes, resources, non-root, a PDB and an HPA per
service, no secret values, consumer replicas within partition counts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from oms_servicekit.purge import PurgeTarget

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = ("dev", "prod")
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
TOPIC_SCRIPT = BASE / "create-topics.sh"
SECRET_TEMPLATE = K8S / "secrets" / "oms-secrets.template.yaml"
TOPICS_DOC = DEPLOY / "TOPICS.md"

#: Kubernetes version the manifests are validated against.
K8S_VERSION = "1.31"

#: name -> (module, port, database)
SERVICES: dict[str, tuple[str, int, str]] = {
    "order-svc": ("order_svc", 8001, "oms_order"),
    "inventory-svc": ("inventory_svc", 8002, "oms_inventory"),
    "customer-svc": ("customer_svc", 8003, "oms_customer"),
    "channel-gateway": ("channel_gateway", 8004, "oms_gateway"),
    "notifier": ("notifier", 8005, "oms_notifier"),
}

#: The topics each service's consumer group reads (see each service's handlers.py).
CONSUMES: dict[str, list[str]] = {
    "order-svc": ["oms.channel.orders", "oms.inventory.reservations", "oms.customers"],
    "inventory-svc": ["oms.orders"],
    "customer-svc": ["oms.orders"],
    "channel-gateway": [],
    "notifier": [
        "oms.channel.orders",
        "oms.orders",
        "oms.inventory.reservations",
        "oms.inventory.stock",
        "oms.customers",
        "oms.alerts",
    ],
}

SECRET_NAME = "oms-secrets"
CREDENTIALS_IN_URL = re.compile(r"\w+://[^/\s:@]+:[^/\s@]+@")
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_KEY", re.IGNORECASE)


# -- helpers -------------------------------------------------------------------------------


def _yaml() -> Any:
    return pytest.importorskip("yaml", reason="PyYAML is not installed")


@pytest.fixture(scope="module")
def k8s_schemas() -> Iterator[Any]:
    """The ``kubernetes_validate`` module, reading each bundled schema file only once."""
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (pip install kubernetes-validate)",
    )
    with pytest.MonkeyPatch.context() as patch:
        # It re-reads the (large) schema JSON for every object; cache it for this module.
        patch.setattr(kv.utils, "schema_contents", cache(kv.utils.schema_contents))
        yield kv


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in _yaml().safe_load_all(path.read_text()) if d]


@cache
def _render(target: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    if kubectl:
        cmd = [kubectl, "kustomize", str(K8S / target)]
    elif kustomize:
        cmd = [kustomize, "build", str(K8S / target)]
    else:
        pytest.skip("neither kubectl nor kustomize is installed: overlays not rendered")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stderr}"
    return tuple(d for d in _yaml().safe_load_all(result.stdout) if d)


def render(target: str) -> list[dict[str, Any]]:
    return list(_render(target))


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    template: dict[str, Any] = spec["template"]["spec"]
    return template


def validate(kv: Any, doc: dict[str, Any], where: str) -> None:
    try:
        kv.validate(doc, K8S_VERSION, strict=True)
    except kv.ValidationError as exc:
        name = doc.get("metadata", {}).get("name")
        pytest.fail(f"{where}: {doc.get('kind')}/{name} is invalid: {exc}")


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def topic_table() -> dict[str, tuple[int, int]]:
    """topic -> (partitions, retention days) from create-topics.sh, DLQs included."""
    text = TOPIC_SCRIPT.read_text()
    block = re.search(r"^TOPICS='\n(.*?)^'", text, re.MULTILINE | re.DOTALL)
    assert block, "no TOPICS='...' table in create-topics.sh"
    table: dict[str, tuple[int, int]] = {}
    for line in block.group(1).splitlines():
        if line.strip():
            name, partitions, days = line.split()
            table[name] = (int(partitions), int(days))
    dlq_partitions = int(re.search(r"^DLQ_PARTITIONS=(\d+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    dlq_days = int(re.search(r"^DLQ_RETENTION_DAYS=(\d+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    for name in list(table):
        table[f"{name}.dlq"] = (dlq_partitions, dlq_days)
    return table


def contract_topics() -> list[str]:
    from oms_contracts.topics import all_topics, dead_letter_topic

    return [*all_topics(), *(dead_letter_topic(t) for t in all_topics())]


# -- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    out = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    instructions = dockerfile_instructions()
    args = dict(
        a.split("=", 1) for i, a in instructions if i == "ARG" and "=" in a and "FROM" not in a
    )
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base

    froms = [a for i, a in instructions if i == "FROM"]
    assert len(froms) >= 2, "expected a build stage and a runtime stage"
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms), froms

    final_start = max(n for n, (i, _) in enumerate(instructions) if i == "FROM")
    build_stage = instructions[:final_start]
    final = instructions[final_start:]

    build_runs = " ".join(a for i, a in build_stage if i == "RUN")
    assert "requirements/constraints.txt" in build_runs
    assert "pip wheel" in build_runs, "local packages are installed from built wheels"
    assert not re.search(r"(^|\s)(-e|--editable)\s", build_runs), "no editable installs"

    final_text = " ".join(f"{i} {a}" for i, a in final)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "COPY . "):
        assert tool not in final_text, f"final stage must not contain {tool!r}"
    assert any(i == "COPY" and a.startswith("--from=build") for i, a in final)

    users = [a for i, a in final if i == "USER"]
    assert users, "final stage must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-zero uid: {users[-1]}"

    healthchecks = [a for i, a in final if i == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]

    cmds = [a for i, a in final if i == "CMD"]
    assert len(cmds) == 1 and "python -m" in cmds[0], cmds
    env_text = " ".join(a for i, a in final if i == "ENV")
    assert "OMS_SERVICE_MODULE=${SERVICE}" in env_text
    assert "HOST=0.0.0.0" in env_text


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for entry in ("**/.venv", "**/.git", "**/.oms", "**/__pycache__"):
        assert entry in ignored


# -- docker compose -----------------------------------------------------------------------


@cache
def _compose() -> dict[str, Any]:
    data = _yaml().safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def test_compose_has_every_piece() -> None:
    services = compose_services()
    expected = {*SERVICES, "kafka", "postgres", "kafka-init", "seed", "credit-bureau"}
    assert set(services) == expected


def test_compose_every_service_has_a_healthcheck() -> None:
    for name, svc in compose_services().items():
        check = svc.get("healthcheck")
        assert isinstance(check, dict), f"{name}: no healthcheck"
        if check.get("disable"):
            # Only one-shot jobs may switch it off.
            assert svc.get("restart") == "no", f"{name}: healthcheck disabled on a long runner"
        else:
            assert check.get("test"), f"{name}: healthcheck without a test"


def test_compose_images_are_pinned() -> None:
    pinned = re.compile(r"^[a-z0-9./_-]+:(?!latest$)[A-Za-z0-9._${}:?-]+(@sha256:[0-9a-f]{64})?$")
    for name, svc in compose_services().items():
        image = svc.get("image")
        assert image, f"{name}: no image"
        assert pinned.match(image), f"{name}: image not pinned: {image}"
        if "build" not in svc:  # third-party image: a version number in the tag
            tag = image.split(":", 1)[1]
            assert re.match(r"\d+\.\d+", tag), f"{name}: tag without a version: {image}"


def test_compose_services_are_built_wired_and_configured() -> None:
    services = compose_services()
    db_names = set()
    for name, (module, port, db) in SERVICES.items():
        svc = services[name]
        build = svc["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["args"]["SERVICE"] == module
        assert (ROOT / build["args"]["SERVICE_DIR"] / "pyproject.toml").is_file()

        deps = svc["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"

        env = svc["environment"]
        for key in (
            "DATABASE_URL",
            "DB_NAME",
            "KAFKA_BOOTSTRAP_SERVERS",
            "KAFKA_PARTITIONS",
            "KAFKA_REPLICATION_FACTOR",
            "HOST",
            "PORT",
            "LOG_LEVEL",
        ):
            assert key in env, f"{name}: {key} not set"
        assert env["DB_NAME"] == db and str(env["PORT"]) == str(port)
        assert env["HOST"] == "0.0.0.0"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert any(p.endswith(f":{port}:{port}") for p in svc["ports"]), svc["ports"]
        assert "/readyz" in " ".join(svc["healthcheck"]["test"])
        assert svc.get("read_only") is True
        db_names.add(env["DB_NAME"])
    assert len(db_names) == len(SERVICES)


def test_compose_kafka_is_single_node_kraft_reachable_by_containers() -> None:
    kafka = compose_services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", str(env["CLUSTER_ID"]))


def test_compose_secrets_come_from_the_environment() -> None:
    # A secret is a variable reference: required (${X:?message}) or optional and empty
    # by default (${X:-}), never a literal.
    from_env = re.compile(r"\$\{(\w+)(:\?[^}]*|:-)\}")
    for name, svc in compose_services().items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if SECRETISH.search(key):
                assert from_env.fullmatch(str(value)), f"{name}: {key} must come from the env"
        if "DATABASE_URL" in env:
            url = env["DATABASE_URL"]
            assert "${POSTGRES_PASSWORD:?" in url, f"{name}: password not from the env"
    assert (DEPLOY / ".env.example").is_file()
    example = (DEPLOY / ".env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#") and SECRETISH.search(line.split("=")[0]):
            assert line.endswith("="), f".env.example must leave secrets empty: {line}"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()
    postgres = compose_services()["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres.startswith("${POSTGRES_PASSWORD:?"), "the database password is required"


def test_compose_services_authenticate_with_jwt_configured_from_the_environment() -> None:
    # Issue 11: jwt is the deploy default; issuer and audience are required variables and
    # the key source (JWKS URL or PEM) comes from the environment, never a literal.
    for name in SERVICES:
        env = compose_services()[name]["environment"]
        assert env["AUTH_MODE"] == "jwt", name
        assert str(env["JWT_ISSUER"]).startswith("${JWT_ISSUER:?"), name
        assert str(env["JWT_AUDIENCE"]).startswith("${JWT_AUDIENCE:?"), name
        assert env["JWT_JWKS_URL"] == "${JWT_JWKS_URL:-}", name
        assert env["JWT_PUBLIC_KEY"] == "${JWT_PUBLIC_KEY:-}", name
    seed = compose_services()["seed"]["environment"]
    assert seed["OMS_SEED_TOKEN"] == "${OMS_SEED_TOKEN:-}"
    example = (DEPLOY / ".env.example").read_text().splitlines()
    for key in ("JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL", "JWT_PUBLIC_KEY", "OMS_SEED_TOKEN"):
        assert f"{key}=" in example, f".env.example must list {key} (empty)"


def test_compose_topic_job_seed_and_fakes() -> None:
    services = compose_services()
    init = services["kafka-init"]
    assert init["image"] == services["kafka"]["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    mounts = [m.split(":")[0] for m in init["volumes"]]
    assert "./k8s/base/create-topics.sh" in mounts
    assert (DEPLOY / "k8s/base/create-topics.sh").is_file()

    seed = services["seed"]
    command = " ".join(seed["command"])
    assert "from oms_devstack.seed import seed_demo" in command
    for dep in ("inventory-svc", "channel-gateway"):
        assert seed["depends_on"][dep]["condition"] == "service_healthy"
    import inspect

    from oms_devstack.seed import seed_demo  # the function the command calls exists

    params = list(inspect.signature(seed_demo).parameters)
    assert params[:2] == ["inventory_url", "gateway_url"], params

    fake = services["credit-bureau"]
    assert fake["profiles"] == ["fakes"]
    assert fake["command"][-1] == "oms_devstack.fakes.credit_bureau"
    port = str(fake["environment"]["PORT"])
    assert any(p.endswith(f":{port}:{port}") for p in fake["ports"])
    assert services["order-svc"]["environment"]["CREDIT_BUREAU_URL"] == (
        f"http://credit-bureau:{port}"
    )
    from oms_devstack import specs

    spec = getattr(specs, "FAKE_CREDIT_BUREAU", None)
    if spec is not None:  # the launcher's port for it is the one compose uses
        assert spec.module == fake["command"][-1] and str(spec.port) == port
    for name, svc in services.items():
        assert "credit-bureau" not in (svc.get("depends_on") or {}), f"{name} needs a profile"


def _docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client installed")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()[:1]
        pytest.skip(f"`docker compose` unavailable: {reason[0] if reason else probe.returncode}")
    return [docker, "compose", "-f", str(COMPOSE), "--profile", "fakes"]


def _compose_env(tmp_path: Path, **values: str) -> tuple[dict[str, str], Path]:
    required = ("POSTGRES_PASSWORD", "OMS_DEMO_SECRET", "JWT_ISSUER", "JWT_AUDIENCE")
    env = {k: v for k, v in os.environ.items() if k not in required}
    env.update(values)
    empty = tmp_path / "empty.env"  # ignore a developer's deploy/.env
    empty.write_text("")
    return env, empty


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    base = _docker_compose()
    env, env_file = _compose_env(
        tmp_path,
        POSTGRES_PASSWORD="test-only",
        OMS_DEMO_SECRET="x",
        JWT_ISSUER="https://id.test/",
        JWT_AUDIENCE="oms",
    )
    cmd = [*base, "--env-file", str(env_file), "config", "-q"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_refuses_missing_secrets(tmp_path: Path) -> None:
    base = _docker_compose()
    env, env_file = _compose_env(tmp_path)
    cmd = [*base, "--env-file", str(env_file), "config", "-q"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "OMS_DEMO_SECRET" in result.stderr


# -- Kubernetes: files one by one (works without kubectl) ----------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def test_every_manifest_file_is_valid_on_its_own(k8s_schemas: Any) -> None:
    files = manifest_files()
    assert len(files) >= 10, files
    kinds = set()
    for path in files:
        for doc in load_docs(path):
            validate(k8s_schemas, doc, str(path.relative_to(ROOT)))
            kinds.add(doc["kind"])
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds
    assert {"Job", "CronJob", "Secret", "Namespace"} <= kinds


def _kustomization(path: Path) -> dict[str, Any]:
    data = _yaml().safe_load((path / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _base_index() -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """(kind, name) of the base resources, its generator names and image names."""
    kust = _kustomization(BASE)
    resources: set[tuple[str, str]] = set()
    for rel in kust["resources"]:
        path = BASE / rel
        assert path.is_file(), f"base resource missing: {rel}"
        for doc in load_docs(path):
            resources.add((doc["kind"], doc["metadata"]["name"]))
    generators = {g["name"] for g in kust.get("configMapGenerator", [])}
    for gen in kust.get("configMapGenerator", []):
        for file in gen.get("files", []):
            assert (BASE / file.split("=")[-1]).is_file(), file
    images = {i["name"] for i in kust.get("images", [])}
    return resources, generators, images


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_references_exist(overlay: str) -> None:
    resources, generators, images = _base_index()
    path = K8S / "overlays" / overlay
    kust = _kustomization(path)
    for rel in kust["resources"]:
        assert (path / rel).exists(), f"{overlay}: resource {rel} missing"
    assert any(Path(rel).name == "base" for rel in kust["resources"])
    patches = kust.get("patches", [])
    assert patches, f"{overlay}: no patches"
    for patch in patches:
        target = patch["target"]
        matches = [
            (kind, name)
            for kind, name in resources
            if kind == target["kind"] and target.get("name", name) == name
        ]
        assert matches, f"{overlay}: patch target {target} matches no base resource"
    for gen in kust.get("configMapGenerator", []):
        assert gen.get("behavior") == "merge" and gen["name"] in generators, gen
    for image in kust.get("images", []):
        assert image["name"] in images, image


def test_secret_template_has_no_values() -> None:
    docs = load_docs(SECRET_TEMPLATE)
    assert len(docs) == 1
    secret = docs[0]
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == SECRET_NAME
    values = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
    assert "DATABASE_URL" in values
    assert all(v in ("", None) for v in values.values()), values
    # The template is not applied by any kustomization (it would overwrite the real one).
    for kust in K8S.rglob("kustomization.yaml"):
        listed = _yaml().safe_load(kust.read_text()).get("resources", [])
        assert not any("secrets" in str(r) for r in listed), kust


# -- Kubernetes: rendered overlays ---------------------------------------------------------


@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_rendered_manifests_are_schema_valid(target: str, k8s_schemas: Any) -> None:
    docs = render(target)
    assert len(docs) >= 5 * 4 + 3, f"{target}: only {len(docs)} objects"
    for doc in docs:
        validate(k8s_schemas, doc, target)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_have_probes_resources_and_run_locked_down(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    deployments = of_kind(docs, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, dep in deployments.items():
        module, port, db = SERVICES[name]
        assert dep["metadata"]["namespace"] == f"oms-{overlay}"
        assert "replicas" not in dep["spec"], f"{name}: replicas belong to the HPA"
        spec = pod_spec(dep)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        (container,) = spec["containers"]
        image = container["image"]
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image
        assert container["command"] == ["python", "-m", module]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": port}

        for probe, path in (
            ("readinessProbe", "/readyz"),
            ("livenessProbe", "/healthz"),
            ("startupProbe", "/healthz"),
        ):
            http = container[probe]["httpGet"]
            assert http["path"] == path and http["port"] == "http", f"{name}: {probe}"

        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{name}: {bound}"
            assert quantity(resources["requests"]["memory"]) <= quantity(
                resources["limits"]["memory"]
            )

        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]

        env_from = container["envFrom"]
        config_refs = [e["configMapRef"]["name"] for e in env_from if "configMapRef" in e]
        secret_refs = [e["secretRef"]["name"] for e in env_from if "secretRef" in e]
        assert len(config_refs) == 1 and config_refs[0].startswith("oms-config")
        assert secret_refs == [SECRET_NAME]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["DB_NAME"] == db and env["PORT"] == str(port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_with_read_only_root(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    workloads = [d for d in docs if d["kind"] in ("Deployment", "Job", "CronJob")]
    assert len(workloads) == 2 * len(SERVICES) + 1  # deployments, purges, topic job
    for doc in workloads:
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert "limits" in container["resources"], doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_service_a_pdb_and_an_hpa(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    pdbs = of_kind(docs, "PodDisruptionBudget")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert len(pdbs) == len(hpas) == len(services) == len(SERVICES)
    for name, dep in deployments.items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        svc = services[name]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        pdb = pdbs[name]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        hpa = hpas[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", name)
        assert hpa["spec"]["metrics"], f"{name}: HPA without metrics"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # A drain must always be able to evict a pod.
        if "minAvailable" in pdb["spec"]:
            assert "maxUnavailable" not in pdb["spec"]
            assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], name
        else:
            assert pdb["spec"]["maxUnavailable"] >= 1


def test_prod_has_more_replicas_bigger_resources_and_min_available() -> None:
    dev, prod = render("overlays/dev"), render("overlays/prod")
    dev_hpa, prod_hpa = (
        of_kind(dev, "HorizontalPodAutoscaler"),
        of_kind(prod, "HorizontalPodAutoscaler"),
    )
    dev_dep, prod_dep = of_kind(dev, "Deployment"), of_kind(prod, "Deployment")
    for name in SERVICES:
        assert dev_hpa[name]["spec"]["minReplicas"] == dev_hpa[name]["spec"]["maxReplicas"] == 1
        assert prod_hpa[name]["spec"]["minReplicas"] >= 3
        assert prod_hpa[name]["spec"]["maxReplicas"] > prod_hpa[name]["spec"]["minReplicas"]
        small = pod_spec(dev_dep[name])["containers"][0]["resources"]
        big = pod_spec(prod_dep[name])["containers"][0]["resources"]
        for bound in ("requests", "limits"):
            for res in ("cpu", "memory"):
                assert quantity(big[bound][res]) > quantity(small[bound][res]), (name, bound, res)
    for pdb in of_kind(prod, "PodDisruptionBudget").values():
        assert pdb["spec"].get("minAvailable", 0) >= 2
    prod_config = next(
        c for n, c in of_kind(prod, "ConfigMap").items() if n.startswith("oms-config")
    )
    dev_config = next(c for n, c in of_kind(dev, "ConfigMap").items() if n.startswith("oms-config"))
    assert prod_config["data"]["KAFKA_REPLICATION_FACTOR"] == "3"
    assert prod_config["data"]["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert dev_config["data"]["KAFKA_REPLICATION_FACTOR"] == "1"


def test_consumer_replicas_stay_within_partitions() -> None:
    table = topic_table()
    hpas = of_kind(render("overlays/prod"), "HorizontalPodAutoscaler")
    for name, topics in CONSUMES.items():
        if not topics:
            continue
        most = max(table[t][0] for t in topics)
        assert hpas[name]["spec"]["maxReplicas"] <= most, (
            f"{name}: maxReplicas {hpas[name]['spec']['maxReplicas']} > {most} partitions"
        )


@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_no_secret_values_are_rendered(target: str) -> None:
    docs = render(target)
    for doc in docs:
        if doc["kind"] == "Secret":
            values = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
            assert all(v in ("", None) for v in values.values()), doc["metadata"]["name"]
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                assert not SECRETISH.search(key), f"{key} belongs in the Secret"
                assert key != "DATABASE_URL", "DATABASE_URL belongs in the Secret"
                assert not CREDENTIALS_IN_URL.search(value), f"credentials in {key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_authenticate_with_jwt_in_every_overlay(overlay: str) -> None:
    # Issue 11: AUTH_MODE=jwt with an issuer, an audience and a JWKS URL in the ConfigMap
    # every Deployment reads; no signing key anywhere in the manifests.
    docs = render(f"overlays/{overlay}")
    [config] = [d for d in docs if d["kind"] == "ConfigMap" and
                d["metadata"]["name"].startswith("oms-config")]  # fmt: skip
    data = config["data"]
    assert data["AUTH_MODE"] == "jwt"
    assert data["JWT_ISSUER"].startswith("https://")
    assert data["JWT_AUDIENCE"]
    assert data["JWT_JWKS_URL"].startswith("https://")
    assert "JWT_PUBLIC_KEY" not in data and "PRIVATE KEY" not in str(docs)
    for name, deployment in of_kind(docs, "Deployment").items():
        sources = pod_spec(deployment)["containers"][0].get("envFrom") or []
        refs = {s.get("configMapRef", {}).get("name", "") for s in sources}
        assert any(r.startswith("oms-config") for r in refs), f"{name} does not read oms-config"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topic_job_and_retention_cronjob(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    job = of_kind(docs, "Job")["oms-create-topics"]
    spec = pod_spec(job)
    (container,) = spec["containers"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", container["image"]), container["image"]
    assert container["command"][-1] == "/oms/create-topics.sh"
    (script_volume,) = [v for v in spec["volumes"] if "configMap" in v]
    configs = of_kind(docs, "ConfigMap")
    script = configs[script_volume["configMap"]["name"]]["data"]["create-topics.sh"]
    assert script == TOPIC_SCRIPT.read_text()

    config = next(c for n, c in configs.items() if n.startswith("oms-config"))
    assert int(config["data"]["LEDGER_RETENTION_DAYS"]) >= 92, "at least 3 months"

    crons = of_kind(docs, "CronJob")
    deployments = of_kind(docs, "Deployment")
    assert {n.removesuffix("-retention-purge") for n in crons} == set(deployments)
    schedules = set()
    for name, cron in crons.items():
        service = name.removesuffix("-retention-purge")
        assert cron["spec"]["suspend"] is False
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        schedules.add(cron["spec"]["schedule"])
        (container,) = pod_spec(cron)["containers"]
        # The purge runs from the service's own image against the service's own database.
        (service_container,) = pod_spec(deployments[service])["containers"]
        assert container["image"] == service_container["image"]
        env = {e["name"]: e["value"] for e in container["env"]}
        service_env = {e["name"]: e.get("value") for e in service_container["env"]}
        assert env["DB_NAME"] == service_env["DB_NAME"]
        assert int(env["OMS_RETENTION_MIN_DAYS"]) >= 92, "at least 3 months"
        assert int(env["OMS_RETENTION_DAYS"]) >= int(env["OMS_RETENTION_MIN_DAYS"])
        assert container["command"][:3] == ["python", "-m", "oms_servicekit.purge"]
        targets = container["command"][3:]
        assert "inbox:processed_at" in targets and "outbox:published_at" in targets
        assert all(PurgeTarget.parse(t) for t in targets)
    assert len(schedules) == len(crons), "staggered schedules"


# -- topics --------------------------------------------------------------------------------


def test_topic_script_covers_every_contract_topic() -> None:
    table = topic_table()
    assert set(contract_topics()) == set(table)
    for name, (partitions, days) in table.items():
        assert partitions >= 1 and days >= 1, name


def test_topics_doc_matches_the_script() -> None:
    doc = TOPICS_DOC.read_text()
    rows = dict(re.findall(r"^\| `([a-z.]+)` \| (\d+) \|", doc, re.MULTILINE))
    table = topic_table()
    base_topics = [t for t in table if not t.endswith(".dlq")]
    assert set(rows) == set(base_topics), rows
    for topic in base_topics:
        assert int(rows[topic]) == table[topic][0], topic


FAKE_KAFKA_TOPICS = r"""#!/bin/sh
# Stand-in for kafka-topics.sh: topics live in $FAKE_STATE as "name partitions" lines.
echo "$*" >> "$FAKE_STATE.calls"
topic="" partitions="" mode=""
while [ $# -gt 0 ]; do
  case "$1" in
    --topic) topic="$2"; shift ;;
    --partitions) partitions="$2"; shift ;;
    --list) mode=list ;;
    --create) mode=create ;;
    --describe) mode=describe ;;
  esac
  shift
done
case "$mode" in
  list) cut -d' ' -f1 "$FAKE_STATE" ;;
  create)
    awk -v t="$topic" '$1 == t { found = 1 } END { exit !found }' "$FAKE_STATE" \
      || echo "$topic $partitions" >> "$FAKE_STATE" ;;
  describe)
    n=$(awk -v t="$topic" '$1 == t { print $2 }' "$FAKE_STATE")
    printf 'Topic: %s\tTopicId: x\tPartitionCount: %s\tReplicationFactor: 1\tConfigs:\n' \
      "$topic" "$n" ;;
esac
"""


def _run_topic_script(
    tmp_path: Path, existing: str = ""
) -> tuple[subprocess.CompletedProcess[str], str]:
    sh = shutil.which("sh")
    if sh is None or sys.platform == "win32":
        pytest.skip("no POSIX shell")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kafka-topics.sh"
    fake.write_text(FAKE_KAFKA_TOPICS)
    fake.chmod(0o755)
    state = tmp_path / "topics"
    state.write_text(existing)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
        "KAFKA_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
        "KAFKA_BIN": str(bin_dir),
        "FAKE_STATE": str(state),
        "WAIT_SECONDS": "0",
    }
    result = subprocess.run(
        [sh, str(TOPIC_SCRIPT)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    calls = Path(f"{state}.calls").read_text() if Path(f"{state}.calls").exists() else ""
    return result, calls


def test_topic_script_creates_every_topic_with_its_partitions(tmp_path: Path) -> None:
    result, calls = _run_topic_script(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    created = dict(line.split() for line in (tmp_path / "topics").read_text().splitlines() if line)
    table = topic_table()
    assert {k: int(v) for k, v in created.items()} == {k: v[0] for k, v in table.items()}
    creates = [c for c in calls.splitlines() if "--create" in c]
    assert len(creates) == len(table)
    for call in creates:
        assert "--bootstrap-server broker:9092" in call
        assert "--replication-factor 3" in call and "min.insync.replicas=2" in call
        assert "--if-not-exists" in call
    assert "--config retention.ms=604800000" in next(c for c in creates if "oms.orders " in c)


def test_topic_script_fails_on_an_under_partitioned_topic(tmp_path: Path) -> None:
    result, _ = _run_topic_script(tmp_path, existing="oms.orders 4\n")
    assert result.returncode == 1
    assert "oms.orders: has 4 partitions, wants 12" in result.stderr
    # The others are still created.
    assert "ok oms.alerts.dlq" in result.stdout
