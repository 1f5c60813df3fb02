"""Live ipywidgets apps for Jupyter: every slider move recomputes the figure and updates it in place.

The app draws with the same functions as the book's static figures
(:func:`gumbel_book.figures.gumbel_softmax.simplex_base_figure` and
:func:`~gumbel_book.figures.gumbel_softmax.simplex_trace_updates`), so the live and the static
versions cannot drift apart. Widgets need a running kernel; the HTML book shows the static version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import ipywidgets as w
import plotly.graph_objects as go
import torch

from .figures.gumbel_softmax import SIMPLEX_LOGITS, UPDATED_TRACES, simplex_base_figure, simplex_trace_updates
from .labs.gumbel_softmax import simplex_view
from .validation import as_logits, check_int, check_tau

TAU_RANGE = (0.05, 10.0)
MAX_SAMPLES = 5000
DEFAULT_SAMPLES = 500
LOGIT_RANGE = (-4.0, 4.0)
PROB_MIN = 0.01


def _title(n_samples: int) -> str:
    return f"{n_samples} Gumbel-Softmax samples on the simplex (K = 3)"


def _checked_settings(
    logits: Sequence[float], tau: float, n_samples: int, seed: int
) -> tuple[torch.Tensor, float, int, int]:
    """The app's starting values, checked against its sliders' ranges."""
    lg = as_logits(logits, k=3)
    if float(lg.min()) < LOGIT_RANGE[0] or float(lg.max()) > LOGIT_RANGE[1]:
        raise ValueError(f"logits must lie in {list(LOGIT_RANGE)} for the app's sliders, got {logits!r}")
    tau = check_tau(tau)
    if not TAU_RANGE[0] <= tau <= TAU_RANGE[1]:
        raise ValueError(f"tau must lie in {list(TAU_RANGE)} for the app's slider, got {tau!r}")
    n_samples = check_int(n_samples, "n_samples")
    if n_samples > MAX_SAMPLES:
        raise ValueError(f"n_samples must be <= {MAX_SAMPLES}, got {n_samples}")
    return lg, tau, n_samples, check_int(seed, "seed", minimum=0)


class TemperatureApp:
    """Sliders for tau, the logits (or probabilities), the sample count and the seed, over a live simplex figure.

    ``app.widget`` is the ipywidgets box; ``app.figure`` the ``FigureWidget`` it updates in place;
    ``app.redraw()`` recomputes for the current settings and returns the seconds it took.
    """

    def __init__(
        self,
        logits: Sequence[float] = SIMPLEX_LOGITS,
        tau: float = 1.0,
        n_samples: int = DEFAULT_SAMPLES,
        seed: int = 0,
        resolution: int = 40,
    ) -> None:
        lg, tau, n_samples, seed = _checked_settings(logits, tau, n_samples, seed)
        self.resolution = check_int(resolution, "resolution", minimum=4)
        self._syncing = False
        self.last_redraw_s = math.nan
        self._make_controls(lg, tau, n_samples, seed)
        self.figure = go.FigureWidget(simplex_base_figure(self._view(), title=_title(n_samples)))
        for control in [self.tau, *self.params, self.n_samples, self.seed]:
            control.observe(self._on_change, names="value")
        self.mode.observe(self._on_mode, names="value")
        self._update_info()
        left = w.VBox([self.tau, *self.params])
        right = w.VBox([self.mode, self.n_samples, self.seed, self.info])
        self.widget = w.VBox([w.HBox([left, right]), self.figure])

    def _make_controls(self, lg: torch.Tensor, tau: float, n_samples: int, seed: int) -> None:
        """The sliders and fields: tau (log scale), one per logit, the sample count, the seed, the mode toggle."""
        style = {"description_width": "90px"}
        layout = w.Layout(width="320px")
        self.tau = w.FloatLogSlider(
            value=tau,
            base=10,
            min=math.log10(TAU_RANGE[0]),
            max=math.log10(TAU_RANGE[1]),
            step=0.02,
            description="τ",
            readout_format=".3g",
            continuous_update=True,
            style=style,
            layout=layout,
        )
        self.mode = w.ToggleButtons(options=["logits", "probabilities"], value="logits", description="set by")
        self.params = [
            w.FloatSlider(
                value=float(v),
                min=LOGIT_RANGE[0],
                max=LOGIT_RANGE[1],
                step=0.05,
                description=f"logit {i + 1}",
                style=style,
                layout=layout,
            )
            for i, v in enumerate(lg.tolist())
        ]
        self.n_samples = w.IntSlider(
            value=n_samples, min=50, max=MAX_SAMPLES, step=50, description="samples", style=style, layout=layout
        )
        self.seed = w.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=style)
        self.info = w.HTML()

    def logits(self) -> torch.Tensor:
        """The current logits (in probability mode: log of the normalized slider weights)."""
        values = torch.tensor([p.value for p in self.params], dtype=torch.float64)
        if self.mode.value == "probabilities":
            values = torch.log(values / values.sum())
        return values

    def _view(self) -> dict:
        return simplex_view(
            self.logits().float(), self.tau.value, self.n_samples.value, self.seed.value, self.resolution
        )

    def redraw(self) -> float:
        """Recompute samples and density for the current settings, update the figure in place; return seconds."""
        start = time.perf_counter()
        updates = simplex_trace_updates(self._view())
        with self.figure.batch_update():
            for index, update in zip(UPDATED_TRACES, updates, strict=True):
                self.figure.data[index].update(update)
            self.figure.layout.title.text = _title(self.n_samples.value)
        self._update_info()
        self.last_redraw_s = time.perf_counter() - start
        return self.last_redraw_s

    def _update_info(self) -> None:
        pi = torch.softmax(self.logits(), dim=-1)
        self.info.value = "π = (" + ", ".join(f"{p:.3f}" for p in pi.tolist()) + ")"

    def _on_change(self, change: dict) -> None:
        if not self._syncing:
            self.redraw()

    def _on_mode(self, change: dict) -> None:
        """Switch the three sliders between logits and probabilities without changing the distribution."""
        pi = torch.softmax(self._logits_for(change["old"]), dim=-1)
        self._syncing = True
        try:
            for i, p in enumerate(self.params):
                if change["new"] == "probabilities":
                    p.min, p.max, p.step = PROB_MIN, 1.0, 0.01
                    p.value = max(PROB_MIN, float(pi[i]))
                    p.description = f"prob {i + 1}"
                else:
                    p.min, p.max, p.step = LOGIT_RANGE[0], LOGIT_RANGE[1], 0.05
                    p.value = min(max(float(torch.log(pi[i])), LOGIT_RANGE[0]), LOGIT_RANGE[1])
                    p.description = f"logit {i + 1}"
        finally:
            self._syncing = False
        self.redraw()

    def _logits_for(self, mode: str) -> torch.Tensor:
        values = torch.tensor([p.value for p in self.params], dtype=torch.float64)
        return torch.log(values / values.sum()) if mode == "probabilities" else values

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def temperature_app(
    logits: Sequence[float] = SIMPLEX_LOGITS,
    tau: float = 1.0,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> TemperatureApp:
    """Start the live Gumbel-Softmax app: move tau, the logits, the sample count or the seed and watch the simplex."""
    return TemperatureApp(logits, tau, n_samples, seed)


class LatentExplorerApp:
    """Pick any test digit, any latent variable and any value: the decoded digit redraws at once.

    Drawn with :func:`gumbel_book.figures.categorical_vae.explorer_grid`, the function behind the book's static
    latent explorer. ``app.widget`` is the ipywidgets box, ``app.figure`` the ``FigureWidget`` updated in place.
    """

    def __init__(self, model, images: torch.Tensor, digit: int = 0, variable: int = 0) -> None:
        from .figures.categorical_vae import check_images, explorer_layout, png_data_uri

        self.model, self.images = model, check_images(images, "images")
        self._uri = png_data_uri
        digit = check_int(digit, "digit", minimum=0)
        variable = check_int(variable, "variable", minimum=0)
        if digit >= len(self.images) or variable >= model.n_latent:
            raise ValueError(
                f"digit must be < {len(self.images)} and variable < {model.n_latent}, got {digit} and {variable}"
            )
        self.digit = w.IntSlider(value=digit, min=0, max=len(self.images) - 1, description="test digit")
        self.variable = w.IntSlider(value=variable, min=0, max=model.n_latent - 1, description="variable")
        self.figure = go.FigureWidget(go.Image(source=self._source(), hoverinfo="skip"))
        self.figure.update_layout(**explorer_layout(model, None, extra_height=30))  # digits as on the page
        self.figure.update_xaxes(visible=False)
        self.figure.update_yaxes(visible=False)
        for s in (self.digit, self.variable):
            s.observe(lambda _change: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.digit, self.variable]), self.figure])
        self.redraw()

    def _source(self) -> str:
        from .figures.categorical_vae import explorer_grid

        return self._uri(explorer_grid(self.model, self.images[self.digit.value], self.variable.value))

    def redraw(self) -> float:
        """Decode the current digit with the chosen variable at each value; returns the seconds it took."""
        t0 = time.perf_counter()
        with self.figure.batch_update():
            self.figure.data[0].source = self._source()
            self.figure.layout.title = f"test digit {self.digit.value}, variable {self.variable.value} set to 0–9"
        return time.perf_counter() - t0

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def latent_explorer_app(model, images: torch.Tensor) -> LatentExplorerApp:
    """Start the live latent explorer over ``images`` (binarized test digits ``[n, 28, 28]``)."""
    return LatentExplorerApp(model, images)
