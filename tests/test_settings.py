"""Configuration: defaults that work with nothing set, and a named variable for every bad value."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aimesh.settings import ConfigError, Settings, markdown_table, variables


def test_defaults_need_no_configuration():
    settings = Settings.from_env({})
    assert settings.broker_url is None and settings.ollama_host is None
    assert settings.max_fixes == 3 and settings.partitions == 4
    assert settings.web_host == "127.0.0.1"
    assert str(settings.tables_dir) == "tables"


def test_values_are_read_and_normalised(tmp_path):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("")
    settings = Settings.from_env(
        {
            "AIMESH_BROKER_URL": "10.0.0.1:9092,10.0.0.2:9092",
            "OLLAMA_HOST": "gpu-box:11434",
            "AIMESH_QDRANT_URL": "http://qdrant:6333/",
            "AIMESH_TASKS": str(tasks),
            "AIMESH_MAX_TASKS": "5",
            "AIMESH_MAX_FIXES": "0",
        }
    )
    assert settings.broker_url == "kafka://10.0.0.1:9092,10.0.0.2:9092"
    assert settings.ollama_host == "http://gpu-box:11434"
    assert settings.qdrant_url == "http://qdrant:6333"
    assert (settings.max_tasks, settings.max_fixes) == (5, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AIMESH_BROKER_URL", "http://broker:9092"),
        ("AIMESH_BROKER_URL", "kafka://broker"),
        ("AIMESH_MAX_FIXES", "-1"),
        ("AIMESH_MAX_TASKS", "many"),
        ("AIMESH_PARTITIONS", "0"),
        ("AIMESH_WEB_PORT", "70000"),
        ("AIMESH_TASKS", "/no/such/file.jsonl"),
        ("OLLAMA_HOST", "ftp://x"),
        ("AIMESH_SANDBOX_MEMORY_MB", "lots"),
        ("AIMESH_SANDBOX_MEMORY_MB", "99999999"),
        ("AIMESH_SANDBOX_TIMEOUT", "0"),
        ("AIMESH_SANDBOX_SERVERS", "0"),
        ("AIMESH_SANDBOX_UNSAFE", "maybe"),
    ],
)
def test_a_bad_value_names_its_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_sandbox_limits_and_pool_come_from_the_environment():
    settings = Settings.from_env(
        {
            "AIMESH_SANDBOX_TIMEOUT": "2.5",
            "AIMESH_SANDBOX_MEMORY_MB": "1024",
            "AIMESH_SANDBOX_SERVERS": "3",
            "AIMESH_SANDBOX_UNSAFE": "1",
        }
    )
    assert settings.sandbox_limits.timeout_s == 2.5 and settings.sandbox_limits.memory_mb == 1024
    assert settings.sandbox_limits.cpu_s == Settings().sandbox_limits.cpu_s
    config = settings.sandbox_pool_config()
    assert config.servers == 3 and config.unsafe
    assert not Settings.from_env({}).sandbox_pool_config().unsafe


def test_the_command_refuses_a_bad_value_naming_the_variable():
    env = {**os.environ, "AIMESH_MAX_FIXES": "-1"}
    result = subprocess.run(
        [sys.executable, "-m", "aimesh", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "configuration error: AIMESH_MAX_FIXES='-1'" in result.stderr


def test_the_readme_states_every_variable_as_the_settings_define_it():
    """Names, defaults and meanings are written once, in aimesh/settings.py; the README's table
    is that table (regenerate it with `python -c "from aimesh.settings import markdown_table;
    print(markdown_table())"`)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown_table() in readme


def test_every_variable_the_code_reads_is_a_setting():
    """An `AIMESH_*` variable read anywhere in the package must be in the table above, so none
    goes undocumented (AIMESH_EMBEDDED is set by `aimesh up` for the worker, and is listed)."""
    package = Path(__file__).resolve().parents[1] / "aimesh"
    read = set()
    for path in package.rglob("*.py"):
        read |= set(re.findall(r"\"(AIMESH_[A-Z0-9_]+)\"", path.read_text()))
    assert read <= {name for name, _, _ in variables()}, read - {n for n, _, _ in variables()}


def test_each_setting_is_read_from_its_own_variable():
    env = {name: "7" for name, _, _ in variables() if name.endswith(("_K", "_FIXES"))}
    settings = Settings.from_env(env)
    assert (settings.memory_k, settings.max_fixes) == (7, 7)
    assert len({name for name, _, _ in variables()}) == len(variables())
