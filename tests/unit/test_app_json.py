"""app.json, the manifest of Heroku's Deploy button: add-ons, formation and every setting."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from socialcare.config import Settings, load_settings
from tests.conftest import REPO

# Set by Heroku itself: the dyno's port and the add-ons' URLs.
SET_BY_HEROKU = {"PORT", "DATABASE_URL", "REDIS_URL"}
# Values chosen for Heroku that differ from socialcare's own default, and why.
HEROKU_VALUES = {"REDIS_TLS_VERIFY": "none"}  # Heroku Data for Redis: a self-signed certificate


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = json.loads((REPO / "app.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and ":" in line)


def _settings_variables() -> set[str]:
    return {f.alias for f in Settings.model_fields.values() if f.alias}


def _procfile_variables() -> set[str]:
    """Variables the Procfile's commands read themselves, e.g. ${WORKER_CONCURRENCY:-2}."""
    found = set()
    for command in _procfile().values():
        found |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", command))
    return found


def test_the_manifest_has_the_deploy_buttons_keys(manifest):
    for key in ("name", "description", "keywords", "env", "formation", "addons", "buildpacks"):
        assert manifest[key], key
    assert isinstance(manifest["keywords"], list)
    assert all(isinstance(k, str) for k in manifest["keywords"])
    assert manifest["buildpacks"] == [{"url": "heroku/python"}]
    assert set(manifest["addons"]) == {"heroku-postgresql", "heroku-redis"}


def test_its_variables_are_exactly_those_socialcare_reads_less_herokus_own(manifest):
    env = manifest["env"]
    read = _settings_variables() | _procfile_variables()
    assert read >= SET_BY_HEROKU
    assert set(env) == read - SET_BY_HEROKU
    for name, spec in env.items():
        assert spec["required"] is False, name
        assert isinstance(spec["description"], str) and len(spec["description"]) > 10, name
        assert isinstance(spec.get("value", ""), str), name


def test_its_values_are_socialcares_defaults_and_valid(manifest, monkeypatch):
    for name in _settings_variables():
        monkeypatch.delenv(name, raising=False)
    defaults = load_settings()
    given = {
        name: spec["value"]
        for name, spec in manifest["env"].items()
        if "value" in spec and name in _settings_variables()
    }
    assert len(given) > 30
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    deployed = load_settings()  # a bad value would raise ConfigError naming it
    for field, info in Settings.model_fields.items():
        if info.alias in HEROKU_VALUES:
            assert getattr(deployed, field) == HEROKU_VALUES[info.alias]
        elif info.alias in given:
            assert getattr(deployed, field) == getattr(defaults, field), info.alias


def test_the_formation_runs_the_procfiles_processes_with_exactly_one_beat(manifest):
    formation = manifest["formation"]
    assert set(formation) == set(_procfile()) - {"release"}
    assert formation["beat"]["quantity"] == 1
    assert all(spec["quantity"] >= 1 for spec in formation.values())


def test_the_procfiles_release_phase_migrates(manifest):
    assert _procfile()["release"].strip() == "socialcare db upgrade"
    assert "postdeploy" not in manifest.get("scripts", {})
