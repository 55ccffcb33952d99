"""The interactive user explorer of explore.ipynb (ipywidgets): choose a user (search by id, filter by gender
and activity), see their history beside each chosen model's top k with the reasons, move the re-rankers'
weights and see the lists change, and look up the items most like a chosen one.

Every panel is an `ipywidgets.HTML` filled from `helpers.notebooks.explorer`, so tests drive the explorer by
setting the controls' values and reading the panels' HTML, without a browser or a kernel.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from helpers.notebooks import explorer as ex
from helpers.rerank import WEIGHT_RANGES

STYLE = """<style>
.explorer-table {border-collapse: collapse; font-size: 12px; margin: 2px 0 10px 0}
.explorer-table th, .explorer-table td {padding: 2px 8px; text-align: left !important; border-bottom: 1px solid #ddd}
.explorer-note {color: #555; font-size: 12px}
</style>"""


class UserExplorer:
    """The widget (`.widget`) and its controls; `refresh()` redraws every panel from the controls' values.

    models: {name: fitted Recommender} shown side by side; context: the `helpers.rerank.RerankContext` the
    re-rankers use; the re-rankers re-order the first model of `models` (or `rerank_model`)."""

    def __init__(self, data: ex.ExplorerData, models: dict, context, k: int = 10, n_candidates: int = 100,
                 user: str | None = None, rerank_model: str | None = None, weights: dict | None = None,
                 n_reasons: int = 3):
        if not models:
            raise ValueError("the explorer needs at least one model; pass {name: fitted model}")
        self.data, self.models, self.context = data, dict(models), context
        self.k, self.n_candidates, self.n_reasons = int(k), int(n_candidates), int(n_reasons)
        start = str(user) if user is not None else ex.default_user(data)
        counts = data.users["training"]
        genders = sorted(data.users["user_gender"].astype(str).unique())
        self.search = widgets.Text(description="user id", placeholder="part of an id", continuous_update=False)
        self.gender = widgets.Dropdown(description="gender", options=["any", *genders], value="any")
        self.activity = widgets.IntRangeSlider(description="history", min=int(counts.min()), max=int(counts.max()),
                                               value=(int(counts.min()), int(counts.max())), continuous_update=False)
        self.user = widgets.Dropdown(description="user", options=[start], value=start)
        names = list(self.models)
        self.shown = widgets.SelectMultiple(description="models", options=names, value=tuple(names[:3]), rows=min(6, len(names)))
        self.base = widgets.Dropdown(description="re-rank", options=names,
                                     value=rerank_model if rerank_model in self.models else names[0])
        weights = weights or {}
        self.weights = {method: widgets.FloatSlider(description=method, min=WEIGHT_RANGES[method][0],
                                                    max=WEIGHT_RANGES[method][1], step=0.05,
                                                    value=float(weights.get(method, 0.0)), continuous_update=False)
                        for method in ex.EXPLORER_RERANKERS}
        self.item = widgets.Dropdown(description="similar to", options=[])
        self.header, self.history, self.lists, self.why = (widgets.HTML() for _ in range(4))
        self.reranked, self.similar = widgets.HTML(), widgets.HTML()
        for control in (self.search, self.gender, self.activity):
            control.observe(self._filter, names="value")
        for control in (self.user, self.shown, self.base, *self.weights.values()):
            control.observe(self._refresh, names="value")
        self.item.observe(self._similar, names="value")
        filters = widgets.HBox([self.search, self.gender, self.activity])
        sliders = widgets.VBox([widgets.HTML("<b>Re-rankers</b> (0 = the model's order)"), self.base,
                                *self.weights.values()])
        # what changes with the controls first (lists, re-ranked lists), then what explains them (history, reasons)
        self.widget = widgets.VBox([widgets.HTML(STYLE), filters, widgets.HBox([self.user, self.shown]), self.header,
                                    widgets.HTML("<b>Top lists</b> (✓: held out for this user, a hit)"), self.lists,
                                    sliders, self.reranked,
                                    widgets.HTML("<b>History</b> (training interactions, newest first)"), self.history,
                                    self.why, widgets.HTML("<b>Similar items</b>"), self.item, self.similar])
        self._filter()
        self.refresh()

    # ------------------------------------------------------------------ callbacks
    def _filter(self, change=None) -> None:
        """Fill the user list from the filters; the current user stays chosen when it still matches."""
        low, high = self.activity.value
        options = ex.matching_users(self.data, self.search.value, self.gender.value, (low, high))
        current = self.user.value
        if current not in options and options:
            current = options[0]
        self.user.options = options or [current]
        self.user.value = current

    def _refresh(self, change=None) -> None:
        self.refresh()

    def _similar(self, change=None) -> None:
        item = self.item.value
        if item is None:
            self.similar.value = ""
            return
        model = self.models[self.base.value]
        table = ex.similar_items(model, self.data, item, self.k)
        self.similar.value = (f"<span class='explorer-note'>{html.escape(self.base.value)}, by "
                              f"{table.attrs['basis']}</span>" + ex.view_html(table, ["title", "category", "similarity"]))

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        """Redraw the header, history, lists, reasons and re-ranked list for the chosen user and weights."""
        user = str(self.user.value)
        info = self.data.users.loc[user] if user in self.data.users.index else None
        self.header.value = (f"<h3>User {html.escape(user)}</h3><span class='explorer-note'>"
                             + (f"gender {html.escape(str(info['user_gender']))}, {int(info['training']):,} training "
                                f"and {int(info['held_out']):,} held-out interactions" if info is not None else "")
                             + "</span>")
        history = ex.user_history(self.data, user)
        self.history.value = ex.view_html(history.head(15), ["title", "category", "rating", "date"]) + (
            f"<span class='explorer-note'>and {len(history) - 15:,} more</span>" if len(history) > 15 else "")
        tables = {name: ex.recommendation_table(self.models[name], self.data, user, self.k, self.n_reasons)
                  for name in self.shown.value}
        self.lists.value = ex.view_html(ex.side_by_side(tables, self.k).reset_index()) if tables else ""
        self.why.value = "".join(
            f"<b>Why {html.escape(name)}</b> <span class='explorer-note'>({table.attrs['reason']})</span>"
            + ex.view_html(table, ex.LIST_COLUMNS) for name, table in tables.items())
        base = self.base.value
        active = {m: s.value for m, s in self.weights.items() if s.value != 0}
        lists = {base: ex.recommendation_table(self.models[base], self.data, user, self.k, self.n_reasons)}
        for method, weight in active.items():
            lists[f"{method} {weight:+.2f}"] = ex.reranked_table(self.models[base], self.context, self.data, user,
                                                                 method, weight, self.k, self.n_candidates,
                                                                 self.n_reasons)
        hits = ex.hits(lists)
        self.reranked.value = (ex.view_html(ex.side_by_side(lists, self.k).reset_index())
                               + "<span class='explorer-note'>hits: " + ", ".join(
                                   f"{html.escape(n)} {h}" for n, h in hits.items()) + "</span>")
        choices = [(f"{t} (history)", i) for t, i in zip(history["title"], history["item_id"])][:30]
        choices += [(f"{t} (recommended)", i) for t, i in zip(lists[base]["title"], lists[base]["item_id"])]
        self.item.options = choices
        self.item.value = choices[0][1] if choices else None
        self._similar()
