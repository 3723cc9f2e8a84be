"""docker-compose.yml and the Dockerfile stay whole as the code grows (CI also runs compose config)."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ONE_SHOT = {"migrate", "search-attributes"}
# Distroless images: nothing inside to probe with (the collector serves its health on :13133).
PROBED_FROM_OUTSIDE = {"temporal-ui", "otel-collector"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_long_running_service_has_a_health_check():
    services = compose()["services"]
    assert {"temporal", "temporal-ui", "temporal-db", "app-db", "api", "router", "worker"} <= set(services)
    for name, service in services.items():
        if name not in ONE_SHOT | PROBED_FROM_OUTSIDE:
            assert "healthcheck" in service, f"{name} has no health check"


def test_dependencies_name_real_services():
    services = compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_api_and_worker_are_built_here_and_use_temporal_on_postgres():
    services = compose()["services"]
    assert services["api"]["build"] == services["worker"]["build"] == "."
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert "temporal-db" in services["temporal"]["depends_on"]


def test_the_image_contains_every_package():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    wanted = {pattern.rstrip("*") for pattern in packages["include"]}
    assert wanted <= copied, f"the Dockerfile misses {wanted - copied}"


def test_traces_and_metrics_go_to_the_collector():
    services = compose()["services"]
    collector = services["otel-collector"]
    mounted = collector["volumes"][0].split(":")[0]
    config = yaml.safe_load((ROOT / mounted).read_text())
    pipelines = config["service"]["pipelines"]
    assert "otlp" in pipelines["traces"]["receivers"]
    assert {"otlp", "prometheus"} <= set(pipelines["metrics"]["receivers"])
    jobs = {job["job_name"] for job in config["receivers"]["prometheus"]["config"]["scrape_configs"]}
    assert jobs == {"journeys-api", "journeys-worker"}
    worker_env = services["worker"]["environment"]
    assert worker_env["JOURNEYS_WORKER_METRICS_PORT"] == "9464"
    assert services["api"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")
