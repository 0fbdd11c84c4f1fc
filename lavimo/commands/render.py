"""`lavimo render ...`: headless Blender rendering (this process imports bpy; it must never import torch).

bpy is imported only inside the run functions, so that building the CLI parser stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from lavimo.commands.argtypes import fraction, int_range, nonnegative_int, positive_float, positive_int
from lavimo.io import LavimoInputError, load_npy
from lavimo.layout import NUM_AVATARS

log = logging.getLogger(__name__)

ENGINE_CHOICES = ("workbench", "cycles", "eevee")
AA_CHOICES = ("OFF", "FXAA", "5", "8", "11", "16", "32")


def _studio_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that renders."""
    parser.add_argument("--avatars", required=True, help="folder of avatar files {00..12}.npz")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="workbench", help="render engine")
    parser.add_argument("--force-engine", action="store_true", help="allow EEVEE without a GPU (very slow)")
    parser.add_argument("--resolution", type=positive_int, default=512, help="square frame size in pixels")
    parser.add_argument("--samples", type=positive_int, default=32, help="Cycles/EEVEE samples per pixel")
    parser.add_argument("--device", choices=("CPU", "GPU"), default="CPU", help="Cycles device")
    parser.add_argument(
        "--aa", choices=AA_CHOICES, default="OFF", help="Workbench anti-aliasing samples (OFF: one render + FXAA)"
    )
    parser.add_argument("--no-shadow", action="store_true", help="Workbench: no contact shadow")
    parser.add_argument("--threads", type=nonnegative_int, default=0, help="CPU threads for rendering (0: all cores)")
    parser.add_argument(
        "--mesh-detail", type=fraction, default=0.5, help="fraction of each avatar's triangles rendered, in (0, 1]"
    )


def _clip_args(parser: argparse.ArgumentParser) -> None:
    """Options of commands that write clip frames."""
    parser.add_argument("--frames-dir", required=True, help="writes {frames_dir}/{clip_id}/00.png.. + meta.json")
    parser.add_argument("--renders-dir", default=None, help="mp4 folder with --video (default: beside frames-dir)")
    parser.add_argument("--mode", choices=("frames", "video"), default="frames", help="render sampled or all frames")
    parser.add_argument("--video", action="store_true", help="also write {renders_dir}/{clip_id}.mp4 (H.264)")
    parser.add_argument("--num-frames", type=positive_int, default=8, help="frames sampled per clip")
    parser.add_argument("--stats", default=None, help="write counts and timings of this process as JSON here")


def register(parser: argparse.ArgumentParser) -> None:
    """Add the render sub-commands to the `lavimo render` parser."""
    commands = parser.add_subparsers(dest="render_command", metavar="SUBCOMMAND", required=True)

    shard = commands.add_parser("shard", help="render the missing clips of one motion shard")
    shard.add_argument("--dataset-dir", required=True, help="prepared dataset (manifest.parquet, motions/)")
    shard.add_argument("--shard", required=True, help="shard name, as in the manifest")
    _studio_args(shard)
    _clip_args(shard)
    shard.set_defaults(func=run_shard)

    clips = commands.add_parser("clips", help="render clips given as joint .npy files (T, 22, 3), id = file stem")
    clips.add_argument("--joints", nargs="+", required=True, help="joint files")
    clips.add_argument("--fps", type=positive_float, default=20.0, help="frame rate of the joint files")
    clips.add_argument(
        "--avatar", type=int_range(0, NUM_AVATARS - 1), default=None, help="avatar index for all (default: per clip id)"
    )
    _studio_args(clips)
    _clip_args(clips)
    clips.set_defaults(func=run_clips)

    avatars = commands.add_parser("avatar-sheet", help="contact sheet of every avatar in rest pose")
    _studio_args(avatars)
    avatars.add_argument("--out", required=True, help="PNG to write")
    avatars.add_argument("--tile", type=positive_int, default=256, help="tile size in pixels")
    avatars.set_defaults(func=run_avatar_sheet)

    sheet = commands.add_parser("clip-sheet", help="one clip on every avatar, or the sampled frames of clips")
    _studio_args(sheet)
    sheet.add_argument("--out", required=True, help="PNG to write")
    sheet.add_argument("--layout", choices=("avatars", "frames"), default="frames", help="avatars: first clip on all")
    sheet.add_argument("--joints", nargs="*", default=[], help="joint .npy files (T, 22, 3), id = file stem")
    sheet.add_argument("--fps", type=positive_float, default=20.0, help="frame rate of the joint files")
    sheet.add_argument("--dataset-dir", default=None, help="take --clips from this prepared dataset")
    sheet.add_argument("--clips", nargs="*", default=[], help="clip ids in --dataset-dir")
    sheet.add_argument(
        "--pick",
        type=nonnegative_int,
        default=0,
        help="also take N clips of --dataset-dir spread over its (unmirrored) clip ids",
    )
    sheet.add_argument(
        "--frame", type=nonnegative_int, default=None, help="avatars layout: frame to show (default: middle)"
    )
    sheet.add_argument("--num-frames", type=positive_int, default=8, help="frames layout: frames per clip")
    sheet.add_argument("--tile", type=positive_int, default=None, help="tile size in pixels")
    sheet.set_defaults(func=run_clip_sheet)

    merge = commands.add_parser(
        "merge-rejects", help="merge the render shards' rejections into {frames_dir}/rejected.csv and the dataset's"
    )
    merge.add_argument("--dataset-dir", required=True, help="prepared dataset (manifest.parquet, rejected.csv)")
    merge.add_argument("--frames-dir", default=None, help="folder of {shard}.rejected.csv (default: DATASET/frames)")
    merge.add_argument("--shards", nargs="*", default=None, help="shard names (default: every shard of the manifest)")
    merge.add_argument("--out", default=None, help="merged list (default: {frames_dir}/rejected.csv)")
    merge.set_defaults(func=run_merge_rejects)

    audit = commands.add_parser(
        "audit", help="check every sampled frame: readable, the right size, not blank, the body in it (no bpy)"
    )
    audit.add_argument("--frames-dir", required=True, help="rendered clips (shard folders are searched too)")
    audit.add_argument("--resolution", type=positive_int, default=512, help="expected square frame size")
    audit.add_argument("--json", default=None, help="also write the findings here")
    audit.set_defaults(func=run_audit)


def _settings(args: argparse.Namespace):
    """StudioSettings from the parsed options (refuses EEVEE without a GPU before Blender loads)."""
    from lavimo.render.engines import check_engine

    check_engine(args.engine, args.force_engine)
    check_avatars(Path(args.avatars))
    if args.threads > 0:  # software OpenGL (llvmpipe) reads this when Blender starts its GPU context
        os.environ.setdefault("LP_NUM_THREADS", str(args.threads))
    from lavimo.render.scene import StudioSettings

    return StudioSettings(
        engine=args.engine,
        resolution=args.resolution,
        force_engine=args.force_engine,
        workbench_aa=args.aa,
        fxaa=args.aa == "OFF",
        shadows=not args.no_shadow,
        samples=args.samples,
        device=args.device,
        threads=args.threads,
        mesh_detail=args.mesh_detail,
    )


def check_avatars(folder: Path) -> None:
    """Refuse an avatar folder that is missing or holds no avatar file (before Blender loads)."""
    if not folder.is_dir():
        raise LavimoInputError(folder, "avatar folder does not exist: run `lavimo avatars build` first")
    if not any(folder.glob("[0-9][0-9].npz")):
        raise LavimoInputError(folder, "no avatar files (00.npz ..) in this folder: run `lavimo avatars build` first")


def check_dataset(dataset_dir: str) -> None:
    """Refuse a dataset folder without a readable manifest (before anything is created)."""
    from lavimo.datasets.manifest import load_manifest

    load_manifest(dataset_dir)


def _options(args: argparse.Namespace):
    """ClipOptions from the parsed options."""
    from lavimo.render.clip import ClipOptions

    if args.num_frames < 1:
        raise LavimoInputError("--num-frames", "must be at least 1")
    return ClipOptions(num_frames=args.num_frames, mode=args.mode, video=args.video)


def _renders_dir(args: argparse.Namespace) -> Path:
    """Where mp4s go: --renders-dir, else `renders` beside the frames folder."""
    return Path(args.renders_dir) if args.renders_dir else Path(args.frames_dir).parent / "renders"


def _finish(args: argparse.Namespace, report) -> int:
    """Log and optionally write the process summary; exit code 0 (rejections are recorded, not fatal)."""
    summary = {**report.summary(), "torch_loaded": "torch" in sys.modules}  # must stay False next to bpy
    log.info(
        "rendered %(rendered)d, skipped %(skipped)d, rejected %(rejected)d, %(frames_per_second).2f frames/s", summary
    )
    if args.stats:
        from lavimo.io import save_json

        save_json(args.stats, summary)
    return 0


def run_shard(args: argparse.Namespace) -> int:
    """`lavimo render shard` (one process per shard at a time: a second waits, then skips what the first did)."""
    check_dataset(args.dataset_dir)  # before Blender loads and before the frames folder is created
    settings, options = _settings(args), _options(args)
    from lavimo.io import folder_lock
    from lavimo.render.shard import render_shard, shard_lock_name

    with folder_lock(args.frames_dir, f"lavimo render shard {args.shard}", shard_lock_name(args.shard)):
        report = render_shard(
            args.dataset_dir, args.shard, args.avatars, args.frames_dir, _renders_dir(args), settings, options
        )
    return _finish(args, report)


def run_clips(args: argparse.Namespace) -> int:
    """`lavimo render clips`."""
    settings, options = _settings(args), _options(args)
    from lavimo.io import write_rejections
    from lavimo.render.clip import RenderSignature
    from lavimo.render.shard import STAGE, RenderReport, joint_file_pending, render_pending

    report = RenderReport()
    video_dir = _renders_dir(args) if options.video else None
    signature = RenderSignature(settings, options, args.avatars)
    pending = joint_file_pending(args.joints, args.frames_dir, video_dir, args.fps, args.avatar, signature, report)
    if report.rejected and not pending and not report.skipped:  # not one joint file could be read: mistyped paths
        first = report.rejected[0]
        raise LavimoInputError(first.source, f"no joint file could be read ({len(report.rejected)}): {first.reason}")
    render_pending(pending, args.avatars, args.frames_dir, video_dir, settings, options, "joint files", report)
    if report.rejected:
        write_rejections(Path(args.frames_dir) / "clips.rejected.csv", report.rejected, STAGE)
    return _finish(args, report)


def run_avatar_sheet(args: argparse.Namespace) -> int:
    """`lavimo render avatar-sheet`."""
    settings = _settings(args)
    from lavimo.render.sheets import avatar_sheet

    print(avatar_sheet(args.avatars, args.out, settings, tile=args.tile))
    return 0


def pick_clips(manifest, count: int) -> list[str]:
    """``count`` clip ids spread evenly over the sorted ids of the unmirrored clips: the centres of ``count`` equal
    segments (all of them when there are no more than ``count``)."""
    mirrored = manifest["mirrored_from"].fillna("").astype(str) != ""
    ids = sorted(manifest.loc[~mirrored, "clip_id"].astype(str)) or sorted(manifest["clip_id"].astype(str))
    count = min(max(count, 0), len(ids))
    return [ids[(2 * k + 1) * len(ids) // (2 * count)] for k in range(count)]


def _sheet_jobs(args: argparse.Namespace) -> list:
    """ClipJobs from --joints files and/or --dataset-dir + --clips / --pick."""
    from lavimo.avatars.assign import avatar_for_clip
    from lavimo.render.clip import ClipJob

    jobs = [
        ClipJob(Path(p).stem, avatar_for_clip(Path(p).stem), args.fps, load_npy(p, "joint file")) for p in args.joints
    ]
    if args.clips or args.pick:
        if not args.dataset_dir:
            raise LavimoInputError("--clips/--pick", "needs --dataset-dir")
        from lavimo.datasets.manifest import load_manifest, load_motion

        manifest = load_manifest(args.dataset_dir)
        clip_ids = list(args.clips) + pick_clips(manifest, args.pick)
        manifest = manifest.set_index("clip_id")
        for clip_id in clip_ids:
            if clip_id not in manifest.index:
                raise LavimoInputError(Path(args.dataset_dir) / "manifest.parquet", f"no clip {clip_id!r}")
            row = manifest.loc[clip_id]
            joints = load_motion(args.dataset_dir, clip_id)[0]
            jobs.append(ClipJob(clip_id, int(row["avatar"]), float(row["fps"]), joints))
    if not jobs:
        raise LavimoInputError("clip-sheet", "give --joints files or --dataset-dir with --clips or --pick")
    return jobs


def run_clip_sheet(args: argparse.Namespace) -> int:
    """`lavimo render clip-sheet`."""
    settings = _settings(args)
    jobs = _sheet_jobs(args)
    from lavimo.render.sheets import clip_frames_sheet, clip_on_avatars_sheet

    if args.layout == "avatars":
        job = jobs[0]
        out = clip_on_avatars_sheet(
            job.joints, job.fps, args.avatars, args.out, settings, frame=args.frame, tile=args.tile or 256
        )
    else:
        out = clip_frames_sheet(jobs, args.avatars, args.out, settings, args.num_frames, tile=args.tile or 192)
    print(out)
    return 0


def run_merge_rejects(args: argparse.Namespace) -> int:
    """`lavimo render merge-rejects` (no bpy)."""
    from lavimo.render.rejects import merge_render_rejections

    check_dataset(args.dataset_dir)
    merged = merge_render_rejections(args.dataset_dir, args.frames_dir, args.shards, args.out)
    print(f"{len(merged)} render rejections -> {Path(args.dataset_dir) / 'rejected.csv'}")
    for rejection in merged[:20]:
        print(f"  {rejection.item}: {rejection.reason}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """`lavimo render audit`: exit 1 when any frame is unreadable, of the wrong size, blank or without the body."""
    from lavimo.io import save_json
    from lavimo.render.check import audit_frames

    frames_dir = Path(args.frames_dir)
    if not frames_dir.is_dir():
        raise LavimoInputError(frames_dir, "frames folder does not exist (render the dataset first)")
    audit = audit_frames(frames_dir, args.resolution)
    if audit.clips == 0:
        raise LavimoInputError(frames_dir, "no rendered clip here (no {clip}/meta.json): render the dataset first")
    print(
        f"{audit.clips} clips, {audit.frames} frames: {len(audit.without_body)} frames without the body "
        f"(in {len(audit.clips_without_body)} clips), {len(audit.wrong_size)} of the wrong size, "
        f"{len(audit.blank)} blank, {len(audit.unreadable)} unreadable, {len(audit.incomplete)} clips incomplete, "
        f"{len(audit.bad_meta)} with an unreadable meta.json"
    )
    for name in (audit.bad_meta + audit.without_body + audit.wrong_size + audit.blank + audit.unreadable)[:20]:
        print(f"  {name}")
    if args.json:
        save_json(args.json, audit.summary())
    return 0 if audit.ok else 1
