"""Start tab: what compile and link are, the guided story (its last results already shown),
the glossary and the limits as served. Handlers: app/start.py."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import notes, start
from app.controls import FreeDropdown
from app.lab import Lab
from app.limits import limits_markdown, limits_rows
from app.render import column_widths
from visualize.story import story_figure


@dataclass
class StartTab:
    """The Start tab's controls and outputs."""

    question: gr.Dropdown
    run: gr.Button
    inspect: gr.Button
    summary: gr.Markdown
    figure: gr.Plot
    table: gr.Dataframe

    @property
    def model_buttons(self) -> list[gr.Button]:
        return [self.run, self.inspect]


def limits_table(lab: Lab) -> str:
    """The limits this app enforces, engine and app together, as a Markdown table."""
    engine, uploads = lab.engine, lab.upload_limits
    return limits_markdown(limits_rows(lab.limits, engine.config, engine.context_limit,
                                       uploads.max_file_bytes, uploads.max_files,
                                       uploads.max_chars, engine.model.bytes_per_token))


def build(lab: Lab) -> StartTab:
    """Lay out the Start tab (inside an open gr.Tab)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            gr.Markdown(notes.START, elem_id="start-text")
        with gr.Column(scale=2, min_width=300):
            gr.HTML(notes.DIAGRAM)
    with gr.Row(equal_height=True):
        question = FreeDropdown(lab.presets.questions, value=lab.presets.example_question,
                                allow_custom_value=True, label="The story's question", scale=3,
                                elem_id="story-question")
        run = gr.Button("▶ Run the story", variant="primary", scale=1, elem_id="run-story")
        inspect = gr.Button("Inspect the last request →", scale=1, elem_id="inspect-story")
    summary = gr.Markdown(start.story_summary(lab.story), label="Story summary",
                          elem_classes="status",
                          elem_id="story-summary")
    figure = gr.Plot(story_figure(lab.story), label="The story", show_label=False,
                     elem_id="story-plot")
    table = gr.Dataframe(start.story_table(lab.story), headers=start.TABLE_HEADERS,
                         label="The story, request by request", interactive=False,
                         wrap=True, elem_id="story-table", elem_classes="scroll-table",
                         column_widths=column_widths(start.TABLE_HEADERS, wide={
                             "prefix": 160, "order": 90, "legolink = exact": 150}))
    with gr.Accordion("Glossary", open=False):
        gr.Markdown(notes.glossary())
    with gr.Accordion("Limits of this app", open=False):
        gr.Markdown(limits_table(lab) + "\n\nA call's model time is estimated before it is "
                    f"queued, {lab.estimator.describe()}.", elem_id="limits")
    return StartTab(question, run, inspect, summary, figure, table)
