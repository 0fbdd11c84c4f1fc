"""Search: lavimo index (dataset and BVH folder, incremental), queries by text / video / clip / BVH, the CLI's
output formats and its one-line answers to bad input. Runs on a tiny trained run built from real demo clips."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import pixel_encoder, tiny_encoder, write_mp4
from PIL import Image

from lavimo.checkpoints import load_checkpoint, save_checkpoint
from lavimo.cli import main
from lavimo.datasets.manifest import load_manifest
from lavimo.embed import embed_dataset
from lavimo.io import file_sha256
from lavimo.retrieval_data import RetrievalDataset, split_ids
from lavimo.search.ann import AnnSettings
from lavimo.search.encode import RunEncoders, SearchInputError
from lavimo.search.index import SearchIndex, build_index
from lavimo.search.library import BvhLibrary, DatasetLibrary, Motion
from lavimo.search.previews import BACKGROUND, PREVIEW_FRAMES, TILE
from lavimo.search.query import Searcher
from lavimo.video.cache import FeatureCache

REPO = Path(__file__).resolve().parents[1]
BVH_FIXTURES = REPO / "tests" / "data" / "bvh"


@pytest.fixture(scope="session")
def dataset(search_run: Path) -> Path:
    return search_run.parent.parent


@pytest.fixture(scope="session")
def encoders(search_run: Path) -> RunEncoders:
    return RunEncoders(search_run, device="cpu")


@pytest.fixture(scope="session")
def index_dir(search_run: Path, encoders: RunEncoders, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "index"
    build_index(search_run, out, progress=False, encoders=encoders)
    return out


@pytest.fixture(scope="session")
def searcher(index_dir: Path) -> Searcher:
    return Searcher(index_dir, device="cpu", frame_encoder=pixel_encoder())


@pytest.fixture(scope="session")
def other_run(search_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run with one weight changed: another model of the same architecture."""
    out = tmp_path_factory.mktemp("other") / "3modal"
    out.mkdir()
    shutil.copy(search_run / "config.json", out / "config.json")
    state = load_checkpoint(search_run / "model.pt")
    name = next(k for k in state["model"] if k.endswith("weight"))
    state["model"][name] = state["model"][name] + 0.01
    save_checkpoint(out / "model.pt", {k: v for k, v in state.items() if k != "format"})
    return out


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the index ------------------------------------------------------------------------------------------------
def test_index_holds_normalised_embeddings_model_identity_and_previews(
    index_dir: Path, search_run: Path, dataset: Path
) -> None:
    index = SearchIndex.load(index_dir)
    manifest = load_manifest(dataset)
    assert list(index.clips["clip_id"]) == list(manifest["clip_id"])
    assert index.embeddings.dtype == np.float32 and index.embeddings.shape == (len(manifest), 32)
    assert np.allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    identity = index.identity
    assert identity.checkpoint_sha256 == file_sha256(search_run / "model.pt")
    assert identity.video.encoder == "pixels" and identity.video.num_frames == 8 and identity.video.crop_size == 256
    assert identity.text_encoder and identity.variant == "3modal"
    first = manifest.iloc[0]
    assert index.clips["caption"].iat[0] == first["texts"][0]["text"]
    assert index.clips["duration"].iat[0] == pytest.approx(first["n_frames"] / first["fps"])
    for row in range(len(index)):  # every clip was rendered: its preview is its rendered frames
        with Image.open(index.preview_path(row)) as strip:
            assert strip.size == (PREVIEW_FRAMES * TILE, TILE)
            assert strip.getpixel((TILE // 2, 2)) == (230, 230, 230)  # the stick-figure frames' background


def test_index_embeddings_are_the_evaluation_embeddings(index_dir: Path, encoders: RunEncoders, dataset: Path) -> None:
    test_ids = split_ids(dataset, "test")
    evaluated = embed_dataset(
        encoders.model, RetrievalDataset(dataset, "test", encoders.stats, max_frames=encoders.max_frames)
    )
    index = SearchIndex.load(index_dir)
    rows = [index.row(i) for i in test_ids]
    assert np.allclose(index.embeddings[rows], evaluated["motion"], atol=1e-5)


# ---- queries --------------------------------------------------------------------------------------------------
def test_text_query_ranks_its_own_clip_in_the_top_few(searcher: Searcher, dataset: Path) -> None:
    manifest = load_manifest(dataset).set_index("clip_id")
    clip = split_ids(dataset, "train")[0]
    hits = searcher.search_text(manifest.at[clip, "texts"][0]["text"], k=5)
    assert clip in [h.clip_id for h in hits]
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    query = searcher.encoders.texts([manifest.at[clip, "texts"][0]["text"]])[0]
    assert scores[0] == pytest.approx(float(searcher.index.embeddings[searcher.index.row(hits[0].clip_id)] @ query))


def test_video_query_is_preprocessed_like_the_cached_frames(searcher: Searcher, dataset: Path) -> None:
    cache = FeatureCache.open_current(dataset / "features")
    for clip in split_ids(dataset, "train")[:4]:
        cached = torch.from_numpy(np.array(cache.get(clip, 0), dtype=np.float32))
        with torch.no_grad():
            expected = searcher.encoders.model.encode_video(cached[None]).numpy()[0]
        from lavimo.search.video import read_query_video

        query = searcher.encoders.video(read_query_video(dataset / "frames" / clip), pixel_encoder())[0]
        assert np.allclose(query, expected, atol=1e-5)


def test_video_query_of_a_clips_rendered_mp4_returns_that_clip_first(
    searcher: Searcher, dataset: Path, tmp_path: Path
) -> None:
    ranks = {}
    for clip in split_ids(dataset, "train"):
        video = write_mp4(dataset / "frames" / clip, tmp_path / f"{clip}.mp4")
        ranks[clip] = [h.clip_id for h in searcher.search_video(video, k=len(searcher.index))].index(clip)
    first = [c for c, r in ranks.items() if r == 0]
    assert len(first) >= 0.8 * len(ranks), ranks  # the tiny model confuses a few symmetric clips with their mirror
    assert max(ranks.values()) <= 1, ranks


def test_bvh_query_returns_the_clip_first(searcher: Searcher, dataset: Path) -> None:
    manifest = load_manifest(dataset)
    for row in manifest[manifest["mirrored_from"] == ""].head(3).itertuples():
        hits = searcher.search_bvh(row.source, k=3)
        assert hits[0].clip_id == row.clip_id and hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_motion_query_returns_the_clip_itself_first(searcher: Searcher, dataset: Path) -> None:
    clip = split_ids(dataset, "test")[0]
    hits = searcher.search_motion(clip, k=5)
    assert hits[0].clip_id == clip and hits[0].score == pytest.approx(1.0, abs=1e-5) and len(hits) == 5


def test_a_frame_encoder_other_than_the_index_s_is_refused_naming_both(index_dir: Path, dataset: Path) -> None:
    other = Searcher(index_dir, device="cpu", frame_encoder=tiny_encoder(input_size=32))
    clip = split_ids(dataset, "train")[0]
    with pytest.raises(SearchInputError, match=r"tiny \(weights tiny-a\).*pixels \(weights pixels-8x8\)"):
        other.search_video(dataset / "frames" / clip)


# ---- building and updating ------------------------------------------------------------------------------------
class CountingEncoders:
    """The run's encoders, counting the motions they embed."""

    def __init__(self, encoders: RunEncoders) -> None:
        self.inner, self.embedded = encoders, 0
        self.identity = encoders.identity

    def motions(self, features: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        self.embedded += len(features)
        return self.inner.motions(features, batch_size)


def test_rebuild_embeds_only_new_clips_and_drops_removed_ones(
    search_run: Path, encoders: RunEncoders, index_dir: Path, tmp_path: Path
) -> None:
    counting = CountingEncoders(encoders)
    out = tmp_path / "index"
    first = build_index(search_run, out, mirrors=False, progress=False, encoders=counting)
    sources = SearchIndex.load(out)
    assert first.embedded == counting.embedded == len(sources) and not any(sources.clips["clip_id"].str.startswith("M"))

    counting.embedded = 0
    second = build_index(search_run, out, progress=False, encoders=counting)
    full = SearchIndex.load(out)
    assert (second.kept, second.embedded, second.removed) == (len(sources), len(full) - len(sources), 0)
    assert counting.embedded == second.embedded
    assert np.array_equal(full.embeddings[: len(sources)], sources.embeddings)  # kept rows untouched
    reference = SearchIndex.load(index_dir)  # built from scratch with every clip
    rows = [reference.row(c) for c in full.clips["clip_id"]]
    assert np.allclose(full.embeddings, reference.embeddings[rows], atol=1e-5)

    counting.embedded = 0
    assert build_index(search_run, out, progress=False, encoders=counting).embedded == 0 == counting.embedded
    third = build_index(search_run, out, mirrors=False, progress=False, encoders=counting)
    assert (third.removed, third.total, counting.embedded) == (len(full) - len(sources), len(sources), 0)
    assert sorted(p.name for p in (out / "previews").iterdir()) == sorted(SearchIndex.load(out).clips["preview"])
    assert sorted(p.name for p in out.glob("embeddings-*.npy")) == ["embeddings-0004.npy"]  # old generations gone


def test_a_killed_build_resumes_from_its_last_commit(
    search_run: Path, encoders: RunEncoders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class KilledError(Exception):
        pass

    reads = []
    original = DatasetLibrary.motions

    def dies_on_the_third_chunk(self: DatasetLibrary, clip_ids: list[str]) -> Iterator[Motion]:
        reads.append(len(clip_ids))
        if len(reads) == 3:
            raise KilledError
        yield from original(self, clip_ids)

    monkeypatch.setattr(DatasetLibrary, "motions", dies_on_the_third_chunk)
    out, counting = tmp_path / "index", CountingEncoders(encoders)
    with pytest.raises(KilledError):  # chunks of 2 x 4 clips, a commit every 8 clips
        build_index(search_run, out, batch_size=2, commit_every=8, progress=False, encoders=counting)
    partial = SearchIndex.load(out)
    assert len(partial) == 16 and partial.meta["complete"] is False and partial.backend_kind == "exact"
    monkeypatch.undo()
    counting.embedded = 0
    report = build_index(search_run, out, progress=False, encoders=counting)
    assert report.kept == 16 and counting.embedded == report.embedded == report.total - 16
    assert SearchIndex.load(out).meta["complete"] is True


def test_hnsw_index_matches_exact_search_and_grows_in_place(
    search_run: Path, encoders: RunEncoders, searcher: Searcher, tmp_path: Path
) -> None:
    out = tmp_path / "hnsw"
    settings = AnnSettings(backend="hnsw")
    build_index(search_run, out, mirrors=False, settings=settings, progress=False, encoders=encoders)
    build_index(search_run, out, settings=settings, progress=False, encoders=encoders)  # adds the mirrors
    hnsw = Searcher(out, device="cpu")
    meta = json.loads((out / "index.json").read_text())
    assert meta["search"]["backend"] == "hnsw" and (out / meta["files"]["ann"]).is_file()
    assert hnsw.index.backend.size == len(hnsw.index)
    for text in ("a person bows", "someone kicks", "a figure waves goodbye"):
        exact = [(h.clip_id, round(h.score, 4)) for h in searcher.search_text(text, k=5)]
        assert [(h.clip_id, round(h.score, 4)) for h in hnsw.search_text(text, k=5)] == exact


def test_bvh_folder_index_skips_bad_files_with_their_reason(
    search_run: Path, encoders: RunEncoders, tmp_path: Path
) -> None:
    library = tmp_path / "mine"
    (library / "sub").mkdir(parents=True)
    for bvh in sorted(BVH_FIXTURES.glob("*.bvh")):
        shutil.copy(bvh, library / "sub" / bvh.name)
    (library / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    (library / "sub" / "bandai-namco_dataset-2_raise-up-left-hand_normal_001.txt").write_text("\nraises a hand\n")
    report = build_index(search_run, tmp_path / "index", bvh_dir=library, progress=False, encoders=encoders)
    index = SearchIndex.load(tmp_path / "index")
    rejected = {r.item: r.reason for r in report.rejected}
    assert "HIERARCHY" in rejected["broken"]  # the reader's own reason
    assert rejected["sub/bandai-namco_dataset-1_dash_normal_001"].startswith("too short")  # a 20-frame excerpt
    assert report.total == len(index) == 1 + len(list(BVH_FIXTURES.glob("*.bvh"))) - len(rejected)
    row = index.row("sub/bandai-namco_dataset-2_raise-up-left-hand_normal_001")
    assert index.clips["caption"].iat[row] == "raises a hand"
    with Image.open(index.preview_path(row)) as strip:  # no renders: a skeleton strip drawn at index time
        assert strip.size == (PREVIEW_FRAMES * TILE, TILE) and strip.getpixel((1, 1)) == BACKGROUND
    csv = pd.read_csv(tmp_path / "index" / "rejected.csv")
    assert set(csv["item"]) == set(rejected) and set(csv["stage"]) == {"index"}
    searcher = Searcher(tmp_path / "index", device="cpu")
    for name in index.clips["clip_id"]:
        assert searcher.search_bvh(library / f"{name}.bvh")[0].clip_id == name


def test_a_bvh_folder_goes_on_past_implausible_files_with_their_reason(tmp_path: Path) -> None:
    """A Frame Time of 1,000,000 s (20 fps of it: gigabytes), a hip 1 km up for one frame, a 1e300-degree rotation:
    each file is refused with its reason, before any allocation, and the real clips beside them are read."""
    walk = BVH_FIXTURES / "bandai-namco_dataset-1_walk_normal_001_frames0-44.bvh"
    raise_hand = BVH_FIXTURES / "bandai-namco_dataset-2_raise-up-left-hand_normal_001.bvh"
    library = tmp_path / "mine"
    library.mkdir()
    for bvh in (walk, raise_hand):
        shutil.copy(bvh, library / bvh.name)
    text = walk.read_text()
    (library / "slow.bvh").write_text(text.replace("Frame Time:\t0.0333333", "Frame Time:\t1000000"))
    lines = text.splitlines()
    row = lines.index("Frame Time:\t0.0333333") + 6
    for name, column, value in (("hip_up", 7, "100000"), ("spun", 10, "1e300")):  # Hips' Y (cm), X rotation
        numbers = lines[row].split()
        numbers[column] = value
        (library / f"{name}.bvh").write_text("\n".join([*lines[:row], " ".join(numbers), *lines[row + 1 :]]) + "\n")
    folder = BvhLibrary(library, min_seconds=1.0)
    motions = list(folder.motions([entry.clip_id for entry in folder.entries()]))
    assert sorted(m.clip_id for m in motions) == sorted([walk.stem, raise_hand.stem])
    reasons = {r.item: (r.source, r.reason) for r in folder.rejected}
    assert sorted(reasons) == ["hip_up", "slow", "spun"]
    assert reasons["slow"] == (
        str(library / "slow.bvh"),
        "implausible Frame Time: 1e+06 s per frame (at most 1 s; 30 fps: 0.0333)",
    )
    assert reasons["hip_up"][1].startswith("implausible motion: the root moves")
    assert reasons["spun"][1].startswith("implausible motion: a rotation of 1e+300 degrees (joint 'Hips', frame 6)")


# ---- the command line -----------------------------------------------------------------------------------------
def test_cli_prints_a_table_json_and_a_contact_sheet(
    capsys: pytest.CaptureFixture[str], index_dir: Path, tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, "search", "--index", index_dir, "--text", "a person bows", "-k", 4)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split() == ["rank", "clip", "id", "score", "caption"] and len(lines) == 5
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3", "4"]

    code, out, _ = cli(capsys, "search", "--index", index_dir, "--motion", "dataset-1_bow_active_001", "--json")
    result = json.loads(out)
    assert code == 0 and result["query"] == {"kind": "motion", "value": "dataset-1_bow_active_001"}
    assert len(result["hits"]) == 10 and result["hits"][0]["clip_id"] == "dataset-1_bow_active_001"
    assert set(result["hits"][0]) == {"rank", "clip_id", "score", "caption", "preview_path"}
    assert Path(result["hits"][0]["preview_path"]).is_file()

    sheet = tmp_path / "sheet.png"
    code, out, _ = cli(capsys, "search", "--index", index_dir, "--text", "someone waves", "-k", 3, "--sheet", sheet)
    assert code == 0 and out.strip().endswith(f"contact sheet: {sheet}")
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.width == PREVIEW_FRAMES * TILE + 12 and image.height > 3 * TILE


def test_cli_index_of_a_bvh_folder(capsys: pytest.CaptureFixture[str], search_run: Path, tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "index", "--run", search_run, "--out", tmp_path / "ix", "--bvh", BVH_FIXTURES)
    assert code == 0 and out.startswith(f"{tmp_path / 'ix'}: ") and "clips (" in out
    assert json.loads((tmp_path / "ix" / "build.json").read_text())["total"] == len(SearchIndex.load(tmp_path / "ix"))


def _bad_inputs(tmp: Path, dataset: Path, index_dir: Path, other_run: Path) -> dict[str, tuple[list, str]]:
    (tmp / "garbage.mp4").write_bytes(b"\x00\x01 not a video" * 50)
    (tmp / "empty.mp4").write_bytes(b"")
    clip = split_ids(dataset, "train")[0]
    write_mp4(dataset / "frames" / clip, tmp / "short.mp4", count=3)
    (tmp / "stills").mkdir()
    (tmp / "notes").mkdir()
    (tmp / "notes" / "readme.txt").write_text("no index here")
    (tmp / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    search = ["search", "--index", index_dir]
    return {
        "unreadable video": ([*search, "--video", tmp / "garbage.mp4"], "garbage.mp4: unreadable video"),
        "empty video": ([*search, "--video", tmp / "empty.mp4"], "empty.mp4: video file is empty"),
        "too short video": ([*search, "--video", tmp / "short.mp4"], "short.mp4: video has 3 frames"),
        "missing video": ([*search, "--video", tmp / "none.mp4"], "none.mp4: video does not exist"),
        "empty image folder": ([*search, "--video", tmp / "stills"], "stills: folder holds no images"),
        "frame encoder": (
            [*search, "--video", dataset / "frames" / clip],
            "the index's frame encoder pixels (weights pixels-8x8",
        ),
        "empty text": ([*search, "--text", "   "], "text query: is empty"),
        "unknown clip": ([*search, "--motion", "no-such-clip"], "clip 'no-such-clip': not in the index"),
        "another model": ([*search, "--run", other_run, "--text", "a bow"], "index from another model"),
        "index another model": (
            ["index", "--run", other_run, "--out", index_dir],
            "index of another model",
        ),
        "missing index": (["search", "--index", tmp / "nowhere", "--text", "a bow"], "nowhere: no search index here"),
        "foreign index": (["search", "--index", tmp / "notes", "--text", "a bow"], "not a lavimo search index"),
        "broken bvh": ([*search, "--bvh", tmp / "broken.bvh"], "broken.bvh: "),
        "missing bvh": ([*search, "--bvh", tmp / "none.bvh"], "none.bvh: BVH file does not exist"),
        "bad k": ([*search, "--text", "a bow", "-k", "0"], "-k: 0 is outside 1..100"),
        "huge k": ([*search, "--text", "a bow", "-k", "100000"], "-k: 100000 is outside 1..100"),
        "sheet folder": ([*search, "--text", "a bow", "--sheet", tmp], f"{tmp}: is a folder: name the PNG file"),
    }


BAD_CASES = (
    "unreadable video",
    "empty video",
    "too short video",
    "missing video",
    "empty image folder",
    "frame encoder",
    "empty text",
    "unknown clip",
    "another model",
    "index another model",
    "missing index",
    "foreign index",
    "broken bvh",
    "missing bvh",
    "bad k",
    "huge k",
    "sheet folder",
)


@pytest.mark.parametrize("case", BAD_CASES)
def test_cli_answers_bad_input_with_one_line_and_exit_code_2(
    case: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    dataset: Path,
    index_dir: Path,
    other_run: Path,
) -> None:
    args, expected = _bad_inputs(tmp_path, dataset, index_dir, other_run)[case]
    code, out, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and out == "", (out, err)
    assert len(lines) == 1 and lines[0].startswith("lavimo: error: "), err
    assert expected in lines[0] and "Traceback" not in err, err


# ---- a damaged index ------------------------------------------------------------------------------------------
def _rewrite(index: Path, change: str) -> str:
    """Damage a copy of an index as ``change`` says; returns the file the error must name."""
    meta = json.loads((index / "index.json").read_text())
    embeddings = index / meta["files"]["embeddings"]
    array = np.load(embeddings)
    header = embeddings.stat().st_size - array.nbytes

    def save(new: np.ndarray, checksum: bool) -> None:  # numbers a build wrote (checksum) or an older index
        np.save(embeddings, new.astype(np.float32))
        if checksum:
            meta.setdefault("sha256", {})["embeddings"] = file_sha256(embeddings)
        else:
            meta.pop("sha256", None)

    if change == "flipped byte":
        data = bytearray(embeddings.read_bytes())
        data[header + 5] ^= 0x10
        embeddings.write_bytes(bytes(data))
    elif change == "flipped clips byte":
        clips = index / meta["files"]["clips"]
        data = bytearray(clips.read_bytes())
        data[len(data) // 2] ^= 0x01
        clips.write_bytes(bytes(data))
        return str(clips)
    elif change == "NaN row":
        array[2] = np.nan
        save(array, checksum=True)
    elif change == "row x 1000":
        array[3] *= 1000
        save(array, checksum=True)
    elif change == "scrambled bytes":
        rng = np.random.default_rng(0)
        embeddings.write_bytes(embeddings.read_bytes()[:header] + rng.bytes(array.nbytes))
        meta.pop("sha256", None)
    elif change == "truncated":
        embeddings.write_bytes(embeddings.read_bytes()[: header + 100])
        meta.pop("sha256", None)
    elif change == "missing embeddings":
        embeddings.unlink()
    elif change == "no files key":
        del meta["files"]
    elif change == "flipped hnsw byte":
        from lavimo.search.ann import HnswSearch

        ann = index / "hnsw-0001.faiss"
        HnswSearch.build(array, AnnSettings(backend="hnsw")).save(ann)
        meta["files"]["ann"], meta["search"]["backend"] = ann.name, "hnsw"
        meta.setdefault("sha256", {})["ann"] = file_sha256(ann)
        data = bytearray(ann.read_bytes())
        data[-20] ^= 0x01
        ann.write_bytes(bytes(data))
        (index / "index.json").write_text(json.dumps(meta))
        return str(ann)
    (index / "index.json").write_text(json.dumps(meta))
    return str(index / "index.json") if change == "no files key" else str(embeddings)


DAMAGE = {
    "flipped byte": "does not match its sha256 in index.json",
    "flipped clips byte": "does not match its sha256 in index.json",
    "NaN row": "1 embedding row(s) are not finite unit vectors (row 2, clip '",
    "row x 1000": "1 embedding row(s) are not finite unit vectors (row 3, clip '",
    "scrambled bytes": "embedding row(s) are not finite unit vectors (row 0,",
    "truncated": "truncated or corrupt .npy file",
    "missing embeddings": "missing, though index.json names it",
    "no files key": "malformed index file: no 'files'",
    "flipped hnsw byte": "does not match its sha256 in index.json",
}


@pytest.mark.parametrize("change", list(DAMAGE))
def test_a_damaged_index_is_one_line_naming_the_file(
    change: str, capsys: pytest.CaptureFixture[str], index_dir: Path, tmp_path: Path
) -> None:
    index = Path(shutil.copytree(index_dir, tmp_path / "index"))
    named = _rewrite(index, change)
    code, out, err = cli(capsys, "search", "--index", index, "--motion", "dataset-1_bow_active_001", "--json")
    lines = [line for line in err.splitlines() if line.startswith("lavimo: error: ")]
    assert code == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, (out, err)
    assert lines[0].startswith(f"lavimo: error: {named}: ") and DAMAGE[change] in lines[0], lines[0]
    assert f"rerun `lavimo index --run RUN --out {index}` to rebuild it" in lines[0]
    if change in ("NaN row", "row x 1000"):
        assert ("NaN or Inf values" if change == "NaN row" else "norm 1000)") in lines[0]


def test_lavimo_index_rebuilds_a_damaged_index_in_place(
    search_run: Path, encoders: RunEncoders, index_dir: Path, tmp_path: Path
) -> None:
    index = Path(shutil.copytree(index_dir, tmp_path / "index"))
    meta = json.loads((index / "index.json").read_text())
    assert set(meta["sha256"]) == {"embeddings", "clips", "ann"} and meta["sha256"]["ann"] is None
    _rewrite(index, "row x 1000")
    report = build_index(search_run, index, progress=False, encoders=encoders)
    assert report.kept == 0 and report.embedded == report.total == len(SearchIndex.load(index_dir))
    rebuilt = SearchIndex.load(index)
    assert np.allclose(rebuilt.embeddings, SearchIndex.load(index_dir).embeddings, atol=1e-5)
