"""Shared pytest fixtures: paths to the real dataset fixtures copied into tests/data, the real avatars, small real
prepared datasets and a tiny finished run."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def humanml3d_fixture() -> Path:
    """The real HumanML3D sample (clip 012314, Mean/Std, index.csv, split lists)."""
    return DATA / "humanml3d"


@pytest.fixture(scope="session")
def kitml_fixture() -> Path:
    """TMR's real KIT-ML annotations.json and split lists."""
    return DATA / "kitml"


@pytest.fixture(scope="session")
def avatars_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 13 real (anny) avatars."""
    from lavimo.avatars.build import build_avatars

    out = tmp_path_factory.mktemp("avatars")
    build_avatars("anny", out)
    return out


@pytest.fixture(scope="session")
def training_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real prepared demo set with caption embeddings and a (stick-figure) frame-feature cache."""
    from helpers import make_training_dataset

    return make_training_dataset(tmp_path_factory.mktemp("train-data"), limit=12)


@pytest.fixture(scope="session")
def tiny_run(training_dataset: Path) -> Path:
    """A finished, evaluated tiny 3-modal run in ``{training_dataset}/runs/3modal`` (2 epochs)."""
    from helpers import TINY_TRAIN

    from lavimo.evaluate_run import evaluate_run
    from lavimo.train import make_train_config, train

    out = training_dataset / "runs" / "3modal"
    train(training_dataset, out, make_train_config("tiny", TINY_TRAIN), progress=False)
    evaluate_run(out)
    return out


@pytest.fixture(scope="session")
def search_run(training_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-modal run that tells its training clips apart by caption, video and motion (search tests)."""
    from helpers import make_search_run

    return make_search_run(training_dataset, tmp_path_factory.mktemp("search"))


# Modules that load OpenVINO or ONNX Runtime into the test process. After them, later tests in the same
# process crashed with a segmentation fault (seen in test_demo.py's prepare tests); they run last.
RUNTIME_MODULES = ("test_bench_features.py", "test_encoder_runtime.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in RUNTIME_MODULES)  # stable: the rest keep their order
