"""Dockerfile: multi-stage, non-root fixed UID, EXPOSE, a default config, a HEALTHCHECK on
/-/healthy, OCI labels; and its install steps (build the wheel, install it into a venv)
really work, run here without a Docker engine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_config, split_host_port
from tests.conftest import IN_CI

ROOT = Path(__file__).parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest))
    return out


def test_the_image_is_built_as_documented() -> None:
    """Two stages; a numeric non-root USER; EXPOSE equal to the default config's port; a
    HEALTHCHECK on /-/healthy; OCI labels; the entrypoint runs that config."""
    steps = instructions()
    assert [w for w, _ in steps].count("FROM") == 2
    user = next(rest for w, rest in steps if w == "USER")
    uid = next(rest.split("=")[1] for w, rest in steps if w == "ARG" and rest.startswith("UID="))
    assert user == "${UID}" and int(uid) >= 1000
    config = load_config(ROOT / "docker" / "janus-monitor.yml", env={})
    (exposed,) = [rest for w, rest in steps if w == "EXPOSE"]
    assert int(exposed) == split_host_port(config.listen)[1]
    assert any(w == "HEALTHCHECK" and "/-/healthy" in rest for w, rest in steps)
    labels = " ".join(rest for w, rest in steps if w == "LABEL")
    for key in ("title", "description", "licenses", "version", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    runs = " ".join(rest for w, rest in steps if w == "RUN")
    assert "pip wheel" in runs and "--no-index --find-links /wheels janus-monitor" in runs


def test_the_install_steps_work(tmp_path: Path) -> None:
    """pip wheel of the project, then a fresh venv installing only from those wheels: the
    console script runs and accepts the image's default config."""
    # The tests run in a network namespace with no route out: the README's first command
    # gets its dependencies' and build backend's wheels from those `make deps` built.
    offline = ROOT / ".venv" / "wheels"
    if not (offline / ".built").exists():
        message = f"{offline} missing: run `make deps`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-index", "--find-links",
                    str(offline), "--wheel-dir", str(wheels), str(ROOT)],
                   check=True, timeout=600)  # fmt: skip
    assert any(wheels.glob("janus_monitor-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
                    str(wheels), "janus-monitor"], check=True, timeout=600)  # fmt: skip
    version = subprocess.run([str(venv / "bin" / "janus-monitor"), "--version"],
                             capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert version.stdout.startswith("janus-monitor ")
    default_config = str(ROOT / "docker" / "janus-monitor.yml")
    checked = subprocess.run(
        [str(venv / "bin" / "janus-monitor"), "check-config", default_config],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("config OK")


def test_the_image_installs_as_the_readme_does() -> None:
    """The README's install commands and the Dockerfile's RUN steps are the same two pip
    commands (build the wheel, install it from the wheel folder only), folders aside."""
    readme = (ROOT / "README.md").read_text()
    runs = "\n".join(rest for w, rest in instructions() if w == "RUN")

    def pip_steps(text: str, folder: str) -> list[str]:
        found = re.findall(r"pip (wheel|install) ([^\n&#]*)", text)
        steps = [
            f"{verb} {' '.join(args.replace(folder, 'WHEELS').split())}" for verb, args in found
        ]
        return [s.replace("--no-cache-dir ", "") for s in steps if "--upgrade pip" not in s]

    assert pip_steps(readme, "wheels") == [
        "wheel --wheel-dir WHEELS .",
        "install --no-index --find-links WHEELS janus-monitor",
    ]
    assert pip_steps(runs, "/wheels") == pip_steps(readme, "wheels")
