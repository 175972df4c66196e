"""Library page: videos with status and errors, ingest a folder, index statistics, the manifest."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import streamlit as st

from app import components, render, resources
from indexer.index.service import LibraryService
from indexer.library.discovery import discover

library = components.library()
manifest = library.manifest
service = LibraryService(library)
st.title("Library")
status = service.status()
counts = status.counts
if status.index["state"] not in ("ok", "no model"):
    st.warning(f"Index {status.index['state']}: {render.md_text(status.index['problem'])}. "
               f"Run {render.md_code(f'python -m indexer repair {library.root}')} (or ingest again) to bring it to the catalog.")
cols = st.columns(5)
for column, (name, value) in zip(cols, [("videos done", counts["done"]), ("failed", counts["failed"]),
                                        ("pending", counts["pending"]), ("clips", counts["clips"]),
                                        ("sources", len(manifest.sources))]):
    column.metric(name, value)

st.subheader("Videos")
videos = status.videos
if videos:
    st.dataframe(
        {"video": [v.video_id for v in videos], "status": [v.status for v in videos],
         "clips": [v.clips for v in videos],
         "duration (s)": [round(v.duration_sec or 0, 1) for v in videos],
         "task": [v.task or "" for v in videos], "split": [v.split or "" for v in videos],
         "error": [v.error or "" for v in videos],
         "warnings": ["; ".join(v.warnings) for v in videos]},
        hide_index=True, width="stretch")
else:
    st.info("This library has no videos yet: ingest a folder below.")

st.subheader("Model and index")
model = manifest.model
left, right = st.columns(2)
with left:
    st.markdown(f"**Recorded model**: {render.md_code(model.checkpoint if model else 'none')} "
                f"(fingerprint {render.md_code((model and model.fingerprint) or '-')})")
    try:
        searcher = resources.get_searcher(library)
        config = searcher.model.config
        st.markdown(f"**Loaded**: {render.md_code(searcher.checkpoint)} · preset {render.md_code(config.name)} · "
                    f"kv_fusion `{config.tangled.kv_fusion}` · "
                    f"{sum(p.numel() for p in searcher.model.parameters()) / 1e6:.2f} M parameters")
        with st.expander("Model config"):
            st.json(config.to_dict(), expanded=False)
    except resources.USER_ERRORS as exc:
        searcher = None
        st.warning(f"No model loaded: {render.md_text(exc)}")
with right:
    if searcher is not None:
        index = searcher.index
        st.markdown(f"**Index**: {len(index)} clip vectors · {index.dim} dimensions · "
                    f"`{index.factory}` · nprobe {index.nprobe} · "
                    f"{'GPU' if index.on_gpu else 'CPU'}")
    for name, info in manifest.extractors.items():
        info = {k: v for k, v in info.items() if k != "classes"}
        st.markdown(f"**{render.md_text(name)} extractor**: "
                    + ", ".join(f"{render.md_text(k)} {render.md_code(v)}" for k, v in info.items()))
with st.expander("Manifest (library.json)"):
    st.json(manifest.to_json(), expanded=False)

st.subheader("Ingest a folder")
# Any folder only when the server was started with --allow-ingest; otherwise the folders the
# library already serves (its sources), so an app user cannot make the server read elsewhere.
allow_any = "--allow-ingest" in sys.argv[1:] or os.environ.get("ACTBERT_ALLOW_INGEST") == "1"
sources = [Path(p) for p in manifest.sources]
st.caption("Videos (mp4, mov, webm, mkv, avi) with SRT/WebVTT sidecars, searched recursively, "
           "processed with this library's extractor settings; the index is updated afterwards. "
           + ("" if allow_any else "Only folders under the library's sources are accepted (start the "
                                   "app with `--allow-ingest` to ingest any folder)."))
folder = st.text_input("Folder on this machine", key="_ingest_folder", placeholder="/path/to/videos")
if st.button("Ingest", icon=":material/upload:", disabled=not folder):
    target = Path(folder).expanduser().resolve()
    if not allow_any and not any(target == s or s in target.parents for s in sources):
        st.error(f"{render.md_text(folder)} is not under this library's sources; start the app with --allow-ingest "
                 "to ingest other folders.")
        st.stop()
    try:
        found = discover([target])
    except (FileNotFoundError, OSError) as exc:
        st.error(f"Cannot read that folder: {render.md_text(exc)}")
        st.stop()
    if not found:
        st.warning(f"No video files under {render.md_text(folder)}.")
        st.stop()
    bar = st.progress(0.0, text=f"0 of {len(found)} videos")
    done: list[str] = []

    def on_video_done(video_id: str) -> None:
        done.append(video_id)
        bar.progress(min(1.0, len(done) / len(found)), text=f"{len(done)} of {len(found)}: {video_id}")

    try:
        with library.writing(timeout=0):  # one writer: say so rather than wait behind another
            summary = service.ingest([target], on_video_done=on_video_done)  # the library's settings
    except resources.USER_ERRORS as exc:
        st.error(f"Ingest stopped: {render.md_text(exc)}")
        st.stop()
    resources.reset_caches()
    st.success(f"{summary.done} ingested, {summary.failed} failed, "
               f"{summary.already_done} already in the library.")
    for video_id, error in summary.errors.items():
        st.error(render.md_text(f"{video_id}: {error}"))
    st.code(json.dumps(summary.to_json(), indent=1), language="json")
