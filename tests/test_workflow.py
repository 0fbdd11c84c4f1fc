"""The workflow wiring: config schema, lint, CLI, and dataset errors raised before any job runs."""

from __future__ import annotations

import copy
import re
import shlex
import subprocess
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from workflow_helpers import run_snakemake, snakemake_output

from lavimo.cli import build_parser
from lavimo.presets import AUTO, FEATURE_VIEWS, PRESETS, resolve_preset, resolve_views


def _schema(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "workflow/schemas/config.schema.yaml").read_text())


def test_config_yaml_is_valid(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    jsonschema.validate(config, _schema(repo_root))


def test_schema_rejects_bad_values(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    for path, value in [(("render", "engine"), "povray"), (("prepare", "shard_size"), 0), (("typo_key",), 1)]:
        bad = copy.deepcopy(config)
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, _schema(repo_root))


# the command groups the README documents, written out here rather than read from lavimo.cli
README_GROUPS = ("motion", "prepare", "avatars", "render", "features", "train", "evaluate", "ablation", "bench",
                 "report", "metrics", "index", "search", "serve")  # fmt: skip


def test_cli_has_the_groups_the_readme_documents(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lavimo --help` lists exactly the documented groups, and the README shows each one in use."""
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    listed = re.findall(r"^ {4}(\w+)", capsys.readouterr().out, flags=re.MULTILINE)  # COMMAND's choices
    assert sorted(listed) == sorted(README_GROUPS)
    readme = (repo_root / "README.md").read_text()
    undocumented = [g for g in README_GROUPS if not re.search(rf"(`|^)lavimo {g}\b", readme, flags=re.MULTILINE)]
    assert undocumented == []
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["undocumented"])
    assert done.value.code == 2


def test_snakemake_lint_is_clean(repo_root: Path) -> None:
    assert "Lints for" not in snakemake_output(repo_root, "--lint", timeout=120)


def _dry_run_without_humanml3d(repo_root: Path, missing: Path, target: str) -> subprocess.CompletedProcess[str]:
    """`snakemake -n TARGET` with datasets.humanml3d.root pointing at a folder that does not exist."""
    config = f"datasets={{'humanml3d': {{'root': '{missing}'}}}}"
    return run_snakemake(repo_root, "-n", target, "--config", config, timeout=120)


def test_missing_dataset_stops_at_once_with_instructions(repo_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-HumanML3D"
    result = _dry_run_without_humanml3d(repo_root, missing, "prepare_humanml3d")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(missing) in output
    assert "datasets.humanml3d.root" in output


def test_training_without_the_dataset_stops_at_once_with_the_prepare_error(repo_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-HumanML3D"
    result = _dry_run_without_humanml3d(repo_root, missing, "train_humanml3d")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and str(missing) in output and "datasets.humanml3d.root" in output
    assert "rule train" not in output  # stopped while building the DAG, before any training job


def test_train_rule_passes_the_resolved_preset_and_the_overrides(repo_root: Path) -> None:
    overrides = {"epochs": 3, "model.latent_dim": 64}
    target, config = "results/demo/runs/2modal/model.pt", f"train={{'overrides': {overrides!r}}}"
    output = snakemake_output(repo_root, "-n", "-p", "--forceall", target, "--config", config, timeout=120)
    command = next(line for line in output.splitlines() if "lavimo train" in line)
    assert f"--preset {resolve_preset('auto', 'demo')}" in command and "--variant 2modal" in command
    for key, value in overrides.items():
        assert f"--set {key}={value}" in command


@pytest.mark.parametrize(("cores", "threads"), [(2, 1), (4, 2), (32, 8)])
def test_the_variants_train_side_by_side_on_a_share_of_the_cores(repo_root: Path, cores: int, threads: int) -> None:
    targets = [f"results/demo/runs/{v}/model.pt" for v in ("3modal", "2modal")]
    output = snakemake_output(repo_root, "-n", "--forceall", "--cores", str(cores), *targets, timeout=120)
    jobs = [block.split("\n\n")[0] for block in output.split("rule train:")[1:]]  # each job's lines
    assert len(jobs) == 2  # half the cores each, up to train.threads (8); snakemake prints no `threads: 1`
    assert all((f"threads: {threads}" in job) == (threads > 1) for job in jobs), jobs


def test_the_avatars_and_render_shards_go_first_and_the_trainings_last(repo_root: Path, tmp_path: Path) -> None:
    """On few cores a free core takes the avatars (they gate every render shard) before anything, then a render
    shard before a feature shard, and either before a training (the 2-modal run is ready early and must not take a
    core from rendering)."""
    results = tmp_path / "results"
    # before `prepare` (a checkpoint) has run, the first DAG already has the avatars, so they can start first
    first_dag = snakemake_output(repo_root, "-n", "--cores", "2", "all", "--config", f"results_dir={results}")
    assert re.search(r"^build_avatars\s+1$", first_dag, flags=re.MULTILINE), first_dag
    (results / "demo").mkdir(parents=True)
    # the prepare checkpoint's output (the shard column is all the DAG reads), so the dry run lists the shard jobs
    pd.DataFrame({"shard": ["0000", "0000", "0001"]}).to_parquet(results / "demo" / "manifest.parquet")
    output = snakemake_output(repo_root, "-n", "--cores", "2", "all", "--config", f"results_dir={results}", timeout=180)
    priorities: dict[str, set[int]] = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", output)[1:]:
        rule = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block).group(1)
        found = re.search(r"^\s+priority: (\d+)$", block, flags=re.MULTILINE)
        priorities.setdefault(rule, set()).add(int(found.group(1)) if found else 0)
    assert {"build_avatars", "render_shard", "features", "train"} <= priorities.keys()
    assert all(len(values) == 1 for values in priorities.values()), priorities
    others = set().union(*(values for rule, values in priorities.items() if rule != "build_avatars"))
    assert min(priorities["build_avatars"]) > max(others)
    assert min(priorities["render_shard"]) > max(priorities["features"]) > max(priorities["train"])
    assert min(priorities["sentences"]) > max(priorities["train"])


def test_feature_views_auto_is_the_presets() -> None:
    assert resolve_views(AUTO, AUTO, "demo") == FEATURE_VIEWS["demo"] == 1
    assert resolve_views(AUTO, AUTO, "humanml3d") == resolve_views(AUTO, "paper", "demo") == 4
    assert resolve_views(8, AUTO, "demo") == 8


def test_the_schema_names_the_presets(repo_root: Path) -> None:
    assert _schema(repo_root)["properties"]["preset"]["enum"] == sorted([AUTO, *PRESETS])


def _report_dry_run(repo_root: Path, results: Path, variants: list[str] | None = None) -> str:
    """`snakemake -n -p --forceall report` on an empty ``results`` folder (the report also waits for whatever
    ablation summaries exist), with ``train.variants`` overridden when given: its output."""
    config = [f"results_dir={results}"] + ([] if variants is None else [f"train={{'variants': {variants!r}}}"])
    return snakemake_output(repo_root, "-n", "-p", "--forceall", "report", "--config", *config)


def _job_block(output: str, rule: str) -> str:
    """The dry run's lines of the job of ``rule`` (from `rule NAME:` up to its shell command)."""
    start = output.index(f"rule {rule}:")
    return output[start : output.index("Shell command:", start)]


def test_report_waits_for_the_merged_render_rejections(repo_root: Path, tmp_path: Path) -> None:
    """The report reads the dataset's rejected.csv only: it runs after the render rows are merged into it,
    also when no 3-modal run (whose features wait for that merge) is configured."""
    output = _report_dry_run(repo_root, tmp_path / "results", ["2modal"])
    assert f"{tmp_path}/results/demo/frames/rejected.csv" in _job_block(output, "report")
    assert "rule render_rejects:" in output and "rule features:" not in output


def _report_command(output: str) -> str:
    """The `lavimo report` command among the dry run's "Shell command:" lines."""
    commands = [line.split("Shell command: ")[-1].strip() for line in output.splitlines()]
    return next(line for line in commands if line.startswith("lavimo report"))


def test_report_rule_passes_the_configured_variants(repo_root: Path, tmp_path: Path) -> None:
    only_3modal = _report_command(_report_dry_run(repo_root, tmp_path / "results", ["3modal"]))
    assert "--variants 3modal " in only_3modal and "2modal" not in only_3modal
    default = _report_command(_report_dry_run(repo_root, tmp_path / "results"))
    variants = yaml.safe_load((repo_root / "config.yaml").read_text())["train"]["variants"]
    assert f"--variants {' '.join(variants)} " in default


def _shell_rules(repo_root: Path) -> set[str]:
    """Every rule of rules/*.smk that runs a shell command."""
    found = set()
    for path in (repo_root / "rules").glob("*.smk"):
        parts = re.split(r"^(?:rule|checkpoint) (\w+):$", path.read_text(), flags=re.M)
        found |= {name for name, body in zip(parts[1::2], parts[2::2], strict=True) if "    shell:" in body}
    return found


def test_shell_commands_quote_every_path(repo_root: Path, tmp_path: Path) -> None:
    """A results_dir (and other configured folders) with a space and a non-ASCII letter: every rule's command, as
    the shell splits it, holds each path whole (the log after `>` too), none cut at the space."""
    base = tmp_path / "wörk space"
    results, amass = base / "rés ults", base / "amass data"
    roots = [results, base / "smpl models", amass, base / "smplh models", base / "Human ML3D"]
    for folder in roots[2:]:
        folder.mkdir(parents=True)
    (base / "Human ML3D" / "index.csv").write_text("source_path,start_frame,end_frame,new_name\n")
    config = {
        "results_dir": str(results),
        "avatars": {"smpl_model_dir": str(base / "smpl models")},
        "datasets": {
            "humanml3d": {"root": str(base / "Human ML3D")},
            "amass": {
                "root": str(amass),
                "smplh_dir": str(base / "smplh models"),
                "index_csv": str(base / "Human ML3D" / "index.csv"),
            },
        },
    }
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, allow_unicode=True))
    targets = ["all", "report", "ablation_demo", "ablation_studies_demo", "index_demo"]
    output = snakemake_output(
        repo_root, "-n", "-p", "--forceall", *targets, f"{results}/amass/humanml3d_layout.json",
        "--configfile", str(configfile),
    )  # fmt: skip
    # once `prepare` has written a manifest (of two shards), the render and feature jobs of its shards show too
    (results / "demo").mkdir(parents=True)
    pd.DataFrame({"shard": ["0000", "0001"]}).to_parquet(results / "demo" / "manifest.parquet")
    output += snakemake_output(repo_root, "-n", "-p", "all", "--configfile", str(configfile))
    path_options = {"--out", "--dataset-dir", "--frames-dir", "--run", "--avatars", "--results", "--smpl-model-dir",
                    "--amass-root", "--smplh-dir", "--index-csv", "--marker"}  # fmt: skip
    seen = set()
    for block in re.split(r"^(?=(?:local)?(?:rule|checkpoint) \w+:$)", output, flags=re.M):
        command = re.search(r"^Shell command: (.*)$", block, flags=re.M)
        if command is None or command.group(1) == "None":  # a target rule: no command
            continue
        rule = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block).group(1)
        seen.add(rule)
        tokens = shlex.split(command.group(1))
        log = re.search(r"^    log: (.*)$", block, flags=re.M).group(1)
        redirects = [tokens[i + 1] for i, token in enumerate(tokens) if token in (">", "2>")]
        assert redirects == [log], (rule, tokens)
        for i, token in enumerate(tokens[:-1]):
            if token in path_options:
                value = tokens[i + 1].split(":", 2)[-1] if rule == "ablation_summary" else tokens[i + 1]
                assert any(value.startswith(f"{root}") for root in roots), (rule, token, tokens)
        for root in roots:
            head, tail = str(root).split(" ", 1)
            for token in tokens:
                assert not token.endswith(head) and (tail not in token or str(root) in token), (rule, token, tokens)
        if rule == "ablation_default":
            assert tokens[1].startswith(str(results)) and tokens[2] == tokens[-4] and tokens[2].endswith(".json.tmp")
    assert seen == _shell_rules(repo_root), seen ^ _shell_rules(repo_root)
