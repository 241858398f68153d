"""The ``[execution]`` section and ``--executor``/``--address`` (issue 12): validated keys, errors naming
the key or the flag (exit 2, nothing trained), and settings that never change a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from miaudit import ConfigError
from miaudit.cli import _execution, app
from miaudit.config import AuditConfig, load_config
from miaudit.training import Execution

BASE = {"data": {"kind": "digits", "max_examples": 120}, "game": {"n_references": 2}}

CONFIG = """\
attacks = ["loss"]

[data]
kind = "digits"
max_examples = 120

[game]
n_references = 2

[output]
dir = "out"
{execution}
"""


def test_execution_section_parsed_and_not_part_of_the_results() -> None:
    cfg = AuditConfig.from_dict({**BASE, "execution": {"executor": "ray", "address": "auto", "num_cpus": 0.5,
                                                        "num_gpus": 0.25, "max_retries": 1}})
    assert cfg.execution == Execution(executor="ray", address="auto", num_cpus=0.5, num_gpus=0.25, max_retries=1)
    assert AuditConfig.from_dict(BASE).execution == Execution()
    # where models train is not part of what results.json records (process and ray give the same bytes)
    assert cfg.to_dict() == AuditConfig.from_dict(BASE).to_dict() and "execution" not in cfg.to_dict()


@pytest.mark.parametrize(("execution", "match"), [
    ({"exeutor": "ray"}, r"unknown key 'exeutor' in \[execution\]; valid keys: executor, address, num_cpus"),
    ({"executor": "dask"}, r"\[execution\] executor: expected 'process' or 'ray', got 'dask'"),
    ({"executor": "ray", "num_gpus": "one"}, r"\[execution\] num_gpus: expected a number >= 0"),
    ({"address": "10.0.0.1:6379"}, r"\[execution\] address: a Ray cluster's address needs the ray executor"),
    ("ray", r"\[execution\] must be a table"),
])
def test_bad_execution_section(execution: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AuditConfig.from_dict({**BASE, "execution": execution})


def test_flags_override_the_config() -> None:
    base = Execution(executor="ray", address="10.0.0.1:6379", num_gpus=0.5)
    assert _execution(base, None, None) == base
    assert _execution(Execution(), None, "auto") == Execution(executor="ray", address="auto")  # implies ray
    assert _execution(base, "process", None) == Execution(executor="process", num_gpus=0.5)
    assert _execution(base, None, "127.0.0.1:1") == Execution(executor="ray", address="127.0.0.1:1", num_gpus=0.5)


@pytest.mark.parametrize(("args", "execution", "message"), [
    (["--executor", "dask"], "", "--executor: expected 'process' or 'ray', got 'dask'"),
    (["--executor", "process", "--address", "127.0.0.1:1"], "",
     "--address: a Ray cluster's address needs the ray executor (--executor ray)"),
    ([], "[execution]\nnum_gpus = -1", "[execution] num_gpus: expected a number >= 0"),
    ([], "[execution]\nworkers = 3", "unknown key 'workers' in [execution]"),
])
@pytest.mark.parametrize("command", ["audit", "levers"])
def test_cli_execution_errors_exit_2_before_training(tmp_path: Path, args: list[str], execution: str, message: str,
                                                    command: str) -> None:
    cfg = tmp_path / "c.toml"
    text = CONFIG.format(execution=execution)
    if command == "levers":
        text += "\n[levers]\nmax_iter = [50, 100]\n" if not execution else ""
        text = text if not execution else text.replace("[execution]", "[levers]\nmax_iter = [50, 100]\n\n[execution]")
    cfg.write_text(text)
    res = CliRunner().invoke(app, [command, str(cfg), *args], env={"COLUMNS": "300"})
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "out" / "cache").exists()  # nothing trained


def test_load_config_reads_execution_from_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(execution='[execution]\nexecutor = "ray"\naddress = "auto"\nnum_cpus = 2'))
    assert load_config(cfg).execution == Execution(executor="ray", address="auto", num_cpus=2)
