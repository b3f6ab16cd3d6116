"""What the tabs share while the page is built: the session's models, the model pickers that a finished training
refreshes, the training desk, and wiring that has to wait until every tab exists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from arcdemo.ui.common import first_choice, model_choices
from arcdemo.ui.desk import TrainingDesk
from arcdemo.ui.tweaks import RESIZE_JS


@dataclass
class Picker:
    """A model dropdown: the datasets it lists (None: all) and the note it shows when it lists none."""

    dropdown: gr.Dropdown
    datasets: tuple[str, ...] | None
    empty_note: str


def refresh_models(pickers: list[Picker], session: Any, *current: str | None) -> tuple:
    """Model lists from disk plus this session's trained models, keeping each selection when it still exists."""
    updates = []
    for picker, key in zip(pickers, current):
        choices = model_choices(picker.datasets, session)
        keys = [value for _, value in choices]
        value = key if key in keys else first_choice(choices)
        updates.append(gr.update(choices=choices, value=value, info=None if choices else picker.empty_note))
    return tuple(updates)


@dataclass
class Context:
    """Handed to every tab's ``build``: shared state and the hooks a tab uses to reach the others."""

    demo: gr.Blocks
    session: gr.State
    desk: TrainingDesk
    pickers: list[Picker] = field(default_factory=list)
    loading: Any = None  # the page-load event that refreshes the pickers (set once every tab is built)
    _later: list[Callable[[], None]] = field(default_factory=list)

    @contextmanager
    def tab(self, title: str, tab_id: str) -> Iterator[gr.Tab]:
        """A tab whose Plotly figures are resized when it shows (a figure drawn while hidden is sized wrongly)."""
        with gr.Tab(title, id=tab_id) as tab:
            yield tab
        tab.select(None, None, None, js=RESIZE_JS)

    def model_picker(self, datasets: tuple[str, ...] | None, empty_note: str, **options: Any) -> gr.Dropdown:
        """A model dropdown, refreshed on page load and after every training."""
        choices = model_choices(datasets)
        dropdown = gr.Dropdown(
            choices, value=first_choice(choices), allow_custom_value=True, info=None if choices else empty_note,
            **options,
        )
        self.pickers.append(Picker(dropdown, datasets, empty_note))
        return dropdown

    def refresh(self) -> dict:
        """Event keywords that refresh every model picker (use once all tabs are built: see ``later``)."""
        pickers = list(self.pickers)
        dropdowns = [picker.dropdown for picker in pickers]
        return dict(
            fn=lambda session, *current: refresh_models(pickers, session, *current),
            inputs=[self.session, *dropdowns], outputs=dropdowns, api_visibility="private",
        )

    def later(self, wire: Callable[[], None]) -> None:
        """Run ``wire`` once every tab is built (it may use ``refresh`` and ``loading``)."""
        self._later.append(wire)

    def finish(self) -> None:
        """Wire what waited for every tab: the page load refreshes the pickers, then the tabs' deferred wiring."""
        self.loading = self.demo.load(**self.refresh())
        for wire in self._later:
            wire()
        self.demo.unload(self.stop_on_leave)

    def stop_on_leave(self, request: gr.Request) -> None:
        if request is not None:
            self.desk.stop(request.session_hash)
