"""`lavimo search`: query an index by text, video, clip id or BVH file; a table, JSON or a contact sheet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, help="index folder (lavimo index)")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="a sentence describing the motion")
    query.add_argument("--video", type=Path, help="a video file (mp4, webm, mov, gif, ...) or a folder of images")
    query.add_argument("--motion", metavar="CLIP_ID", help="an indexed clip: motions like it")
    query.add_argument("--bvh", type=Path, help="a BVH file: motions like it")
    parser.add_argument("-k", type=int, default=10, help="how many results (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet PNG of the results' preview strips")
    parser.add_argument("--run", type=Path, help="the index's run, if it moved (its model must be the same)")
    parser.add_argument("--frame-checkpoint", type=Path, help="frame-encoder weights for --video (e.g. CLIP)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)


def describe_query(args: argparse.Namespace) -> tuple[str, str]:
    """(kind, value) of the query given."""
    for kind in ("text", "video", "motion", "bvh"):
        value = getattr(args, kind)
        if value is not None:
            return kind, str(value)
    raise ValueError("no query")  # argparse requires one


def format_table(hits: list, caption_width: int = 70) -> str:
    """Rank, clip id, score and caption as aligned text columns."""
    width = max([len("clip id"), *(len(h.clip_id) for h in hits)])
    lines = [f"{'rank':>4}  {'clip id':<{width}}  {'score':>6}  caption"]
    for h in hits:
        caption = h.caption if len(h.caption) <= caption_width else h.caption[: caption_width - 3] + "..."
        lines.append(f"{h.rank:>4}  {h.clip_id:<{width}}  {h.score:>6.3f}  {caption}")
    return "\n".join(lines)


def quiet_model_loading() -> None:
    """No INFO logging or Hugging Face progress bars while the model loads."""
    import logging

    logging.getLogger("lavimo").setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers comes with the ml extra
        pass


def run(args: argparse.Namespace) -> int:
    from lavimo.search import MAX_K
    from lavimo.search.encode import SearchInputError
    from lavimo.search.previews import contact_sheet
    from lavimo.search.query import Searcher

    if not 1 <= args.k <= MAX_K:
        raise SearchInputError("-k", f"{args.k} is outside 1..{MAX_K} (the most results one query returns)")
    if args.sheet is not None and args.sheet.is_dir():
        raise SearchInputError(args.sheet, "is a folder: name the PNG file to write the contact sheet to")
    kind, value = describe_query(args)
    if not args.verbose:  # the table (or JSON) alone on stdout, the one error line alone on stderr
        quiet_model_loading()
    searcher = Searcher(
        args.index, run=args.run, device=args.device, frame_checkpoint=args.frame_checkpoint, eager=False
    )
    method = {
        "text": searcher.search_text,
        "video": searcher.search_video,
        "motion": searcher.search_motion,
        "bvh": searcher.search_bvh,
    }[kind]
    hits = method(value, args.k)
    if args.sheet is not None:
        rows = [(f"#{h.rank}  {h.score:.3f}  {h.clip_id}  {h.caption}", h.preview_path) for h in hits]
        contact_sheet(args.sheet, f"{kind}: {value}", rows)
    if args.json:
        out = {"query": {"kind": kind, "value": value}, "index": str(args.index), "hits": [h.to_dict() for h in hits]}
        if args.sheet is not None:
            out["sheet"] = str(args.sheet)
        print(json.dumps(out, indent=1))
    else:
        print(format_table(hits))
        if args.sheet is not None:
            print(f"contact sheet: {args.sheet}")
    return 0
