"""Queries against an index: text, a video (file or image folder), an indexed clip, or a BVH file -> ranked hits.

:class:`Searcher` opens an index and the model that built it once (a web server keeps one), then answers
:meth:`~Searcher.search_text`, :meth:`~Searcher.search_video`, :meth:`~Searcher.search_motion` and
:meth:`~Searcher.search_bvh`, each returning ``k`` :class:`Hit` s, best first. The model is the checkpoint the index
records (or ``run=``, e.g. after the run folder moved); a checkpoint whose SHA-256 differs from the index's is
refused, so an index is never queried with another model. Every bad input (empty text, unreadable or too short
video, unknown clip id, BVH that fails to convert, missing or foreign index, another model, another frame encoder)
raises :class:`~lavimo.search.encode.SearchInputError`, whose message is one line naming the input and the problem.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.io import LavimoInputError
from lavimo.search.encode import RunEncoders, SearchInputError, model_file
from lavimo.search.index import SearchIndex

PathLike = str | os.PathLike[str]
MAX_TEXT = 1000  # characters; the tokenizer truncates far earlier


@dataclass(frozen=True)
class Hit:
    """One result: 1-based rank, clip id, cosine similarity, caption ("" if none), preview strip path (or None)."""

    rank: int
    clip_id: str
    score: float
    caption: str
    preview_path: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)


class Searcher:
    """An index and its model, loaded once."""

    def __init__(
        self,
        index: SearchIndex | PathLike,
        run: PathLike | None = None,
        device: str = "auto",
        frame_encoder: Any = None,
        frame_checkpoint: PathLike | None = None,
        eager: bool = True,
    ) -> None:
        """Open ``index``; with ``eager`` also load and check its model now (a server), else at the first query
        that needs it (the CLI: bad input is answered before any model loads)."""
        self.index = index if isinstance(index, SearchIndex) else SearchIndex.load(index)
        self.run, self.device = run, device
        self._encoders: RunEncoders | None = None
        self._frame_encoder, self._frame_checkpoint = frame_encoder, frame_checkpoint
        if eager:
            _ = self.encoders

    @property
    def encoders(self) -> RunEncoders:
        """The index's model, loaded once; a checkpoint other than the one the index records is refused."""
        if self._encoders is None:
            expected = self.index.identity
            path = model_file(self.run) if self.run is not None else Path(expected.checkpoint)
            if not path.is_file():
                raise SearchInputError(path, "the index's model file is not here (pass --run with the run's new place)")
            encoders = RunEncoders(path, self.device)
            found = encoders.identity.checkpoint_sha256
            if found != expected.checkpoint_sha256:
                raise SearchInputError(
                    self.index.path,
                    f"index from another model: built with {expected.describe()}, but {path} has sha256 "
                    f"{found[:12]}; rebuild the index with `lavimo index --run ...`",
                )
            self._encoders = encoders
        return self._encoders

    def search_embedding(self, query: np.ndarray, k: int = 10) -> list[Hit]:
        """The ``k`` clips nearest to one (C,) L2-normalised embedding."""
        if not isinstance(k, int) or k < 1:
            raise SearchInputError("k", f"must be a whole number of at least 1, got {k!r}")
        scores, rows = self.index.search(query, k)
        clips = self.index.clips
        return [
            Hit(
                rank=rank,
                clip_id=str(clips["clip_id"].iat[row]),
                score=round(float(score), 6),
                caption=str(clips["caption"].iat[row] or ""),
                preview_path=None if (p := self.index.preview_path(int(row))) is None else str(p),
            )
            for rank, (score, row) in enumerate(zip(scores, rows, strict=True), start=1)
        ]

    def search_text(self, text: str, k: int = 10) -> list[Hit]:
        """Motions matching a sentence."""
        text = (text or "").strip()
        if not text:
            raise SearchInputError("text query", "is empty")
        if len(text) > MAX_TEXT:
            raise SearchInputError("text query", f"is {len(text)} characters long; at most {MAX_TEXT}")
        return self.search_embedding(self.encoders.texts([text])[0], k)

    def search_video(self, path: PathLike, k: int = 10) -> list[Hit]:
        """Motions matching a video file (mp4, webm, mov, gif, ...) or a folder of images."""
        from lavimo.search.video import read_query_video

        video = self.index.identity.video
        if video is None:
            raise SearchInputError("video query", f"the index's model {self.index.identity.run} has no video encoder")
        frames = read_query_video(path, video.num_frames)  # the input is checked before any encoder loads
        encoder = self.encoders.frame_encoder(self._frame_encoder, self._frame_checkpoint)
        self._frame_encoder = encoder
        return self.search_embedding(self.encoders.video(frames, encoder)[0], k)

    def search_motion(self, clip_id: str, k: int = 10) -> list[Hit]:
        """Motions like an indexed clip (the clip itself comes first)."""
        return self.search_embedding(self.index.embeddings[self.index.row(clip_id)], k)

    def search_bvh(self, path: PathLike, k: int = 10) -> list[Hit]:
        """Motions like the motion in a BVH file (converted as ``lavimo motion from-bvh`` does)."""
        from lavimo.motion.pipeline import bvh_to_clip

        path = Path(path)
        if not path.is_file():
            raise SearchInputError(path, "BVH file does not exist")
        try:
            clip = bvh_to_clip(path)
        except LavimoInputError as error:
            raise SearchInputError(error.path, error.problem) from error
        except (ValueError, IndexError, KeyError) as error:  # malformed content the reader did not name
            raise SearchInputError(path, f"not a readable BVH ({type(error).__name__}: {error})") from error
        return self.search_embedding(self.encoders.motions([clip.features])[0], k)
