"""Model page: the open library's model card: its config, training curves, and the evaluations
``actbert evaluate`` recorded beside it (tables and charts with 95% intervals). Renders only:
the files are read by ``app.model_card``; nothing is recomputed."""

from __future__ import annotations

import json

import streamlit as st

from actbert.benchmarks import paper
from actbert.evaluation import known_limits
from actbert.reporting import figures
from actbert.portable import portable_command, portable_path
from app import components, model_card, render, state

library = components.library()
st.title("Model")
cards = model_card.model_cards(library.root, library.manifest)
if not cards:
    st.info("This library records no model (library.json names none): train one with "
            "`python -m actbert train` or build the demo with `python -m indexer demo`.")
    st.stop()
evaluate_command = f"python -m actbert evaluate --library {library.root} --split test"


def show_summary(card: model_card.ModelCard) -> None:
    st.caption(f"Checkpoint {render.md_code(card.checkpoint)}")
    if card.problem:
        st.warning(f"The model's config could not be read: {render.md_text(card.problem)}")
        return
    summary = card.summary
    cols = st.columns(4)
    for column, key in zip(cols, ("preset", "max_regions", "match_input", "kv_fusion")):
        column.metric(key, str(summary[key]))
    verbs = summary["verbs"]
    st.markdown(f"**Text stream**: {summary['text layers']} layers, hidden size "
                f"{summary['text hidden size']} · **verbs** ({len(verbs)}): "
                + (", ".join(render.md_code(v) for v in verbs) if verbs else "none recorded"))


def show_training(card: model_card.ModelCard) -> None:
    run = card.run
    if run is None or not run.records:
        st.caption("No training curves: no train.jsonl beside this checkpoint or in its run folder.")
    else:
        st.plotly_chart(figures.curves_figure(run.records, f"{card.label}: pretraining losses "
                                                           f"({len(run.records)} logged steps)"),
                        key=f"_curves_{card.role}", config=render.EXPORT_CONFIG)
    if run is not None and run.config is not None:
        with st.expander("train_config.json (the options of `actbert train`)"):
            shown = {k: portable_path(v, library.root, k) if isinstance(v, str) else v
                     for k, v in run.config.items()}
            st.code(json.dumps(shown, indent=1), language="json")


def _known(value) -> str:
    return "?" if value is None else str(value)


def show_evaluation(card: model_card.ModelCard, split: str) -> None:
    record = card.evaluations[split]
    if card.stale.get(split):
        st.warning(f"This {split} evaluation was recorded for other weights: the model changed "
                   f"after it. Run `{evaluate_command.replace('test', split)}` again.")
    ablation = record.ablation_checkpoint
    ablation = (portable_path(ablation, library.root, "ablation-checkpoint") if ablation
                else "none (regions removed)")
    st.markdown(f"**{split} split**: {_known(record.videos)} videos, {_known(record.clips)} "
                f"clips · recorded {render.md_text(_known(record.provenance.timestamp))} · ablation "
                f"{render.md_code(ablation)}")
    # records made before commands were kept portable still hold a machine's paths: shown without
    command = record.provenance.command
    st.code(portable_command(command, library.root) if command else "(command not recorded)",
            language="bash")
    benchmark = paper.benchmark_of(record.dataset)
    if benchmark is None:
        st.caption("This corpus is not one of the paper's benchmarks: the paper's numbers are not "
                   "comparable and are not drawn (they are listed below, for orientation only).")
    subtitle = figures.subtitle_of(record)
    for task, table in record.task_tables().items():
        ci = record.intervals(task)
        st.subheader(task.replace("_", " "), divider="gray")
        st.plotly_chart(figures.task_figure(task, table, ci,
                                            paper.paper_references(task, benchmark), subtitle),
                        key=f"_eval_{card.role}_{split}_{task}", config=render.EXPORT_CONFIG)
        values, numbers = st.columns(2)
        rows = figures.interval_rows(table, ci)
        values.dataframe(
            {"system": [r["system"] for r in rows], "metric": [r["metric"] for r in rows],
             "value": [r["value"] for r in rows],
             "95% interval": [f"[{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]"
                              if r["interval"] else "" for r in rows]},
            hide_index=True, width="stretch")
        diffs = figures.difference_rows(record, task)
        if diffs:
            numbers.dataframe(
                {"difference": [r["pair"] for r in diffs], "metric": [r["metric"] for r in diffs],
                 "value": [r["value"] for r in diffs],
                 "95% interval": [f"[{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]"
                                  if r["interval"] else "" for r in diffs],
                 "interval": [r["verdict"] for r in diffs]},
                hide_index=True, width="stretch")
    if record.attribution:
        show_attribution(card, split, record.attribution)
    st.subheader("Known limits", divider="gray")
    st.caption("Generated from this evaluation (`actbert evaluate-summary`): every comparison an "
               "ActBERT row loses to a baseline or to the no-regions ablation.")
    st.markdown("\n".join(known_limits.markdown_lines(record)))
    with st.expander(f"Notes ({len(record.notes)})"):
        for note in record.notes:
            st.markdown(f"- {render.md_text(note)}")
    with st.expander("The paper's numbers (ActBERT, section 4.2, on its benchmarks)"):
        rows = paper.paper_rows()
        st.dataframe({k: [r[k] for r in rows] for k in rows[0]}, hide_index=True, width="stretch")


def show_attribution(card: model_card.ModelCard, split: str, entry: dict) -> None:
    """What the matching score depends on (``actbert evaluate --tasks attribution``)."""
    from actbert.evaluation.attribution_summary import AttributionSummary

    summary = AttributionSummary.from_json(entry)
    st.subheader("attribution", divider="gray")
    low_high = summary.grid_range
    st.caption(f"{summary.pairs} of {summary.of_pairs} (step description, true clip) pairs · "
               "head faithfulness "
               + (f"{low_high[0]:+.2f} .. {low_high[1]:+.2f}" if low_high else "undefined")
               + f" · the match depends most on {render.md_text(str(summary.depends_most))}")
    grid, drops = figures.attribution_figures(entry)
    st.plotly_chart(drops, key=f"_attr_streams_{card.role}_{split}", config=render.EXPORT_CONFIG)
    st.plotly_chart(grid, key=f"_attr_grid_{card.role}_{split}", config=render.EXPORT_CONFIG)


for card in cards:
    st.header(card.label, divider="blue")
    show_summary(card)
    show_training(card)
    if card.role != "model" and not card.evaluations:
        continue  # the ablation's figures are rows of the model's evaluation
    st.subheader("Evaluation")
    if not card.evaluations:
        st.info(f"No evaluation recorded beside this model: run `{evaluate_command}` to fill "
                "this page (it keeps its result as `evaluation_test.json` beside the checkpoint).")
        continue
    splits = sorted(card.evaluations, key=lambda s: (s != "test", s))
    split = splits[0]
    if len(splits) > 1:
        split = st.segmented_control("Split", splits, key=state.bind(f"split_{card.role}", splits,
                                                                     default=splits[0]),
                                     on_change=state.from_widget, args=(f"split_{card.role}",)) or splits[0]
    show_evaluation(card, split)
