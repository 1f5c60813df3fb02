"""Static twins of the book's plotly figures, drawn by matplotlib from the same figure data (the print edition).

:func:`to_matplotlib` takes what a builder of this package returns (a ``go.Figure``, or its dict as a page embeds
it) and draws the same traces, so a twin can never drift from the data of the figure it prints: there is one data
function per figure and one drawing of it for paper. A figure with a slider, or with menu buttons, prints as a
grid of panels, one per state: the figure with that step's ``restyle``/``relayout``/``update`` applied, as a click
would. :func:`print_states` chooses the states: the values named in ``layout.meta["print_steps"]`` (a builder's
choice, such as tau = 0.1, 0.5, 1 and 3 on the simplex), else up to :data:`MAX_PANELS` evenly spaced steps.

:func:`figures_in_html` reads the figures back out of a built page (the ``Plotly.newPlot`` calls that
:func:`gumbel_book.figures.style.figure_html` writes), so the PDF builder prints exactly what the page shows.
The drawing covers what the book's figures use: scatter (lines, markers, text, fills), bar (grouped, overlaid,
with a base), heatmap and image traces, subplots, log axes, shapes and annotations. Anything else raises
``ValueError`` naming it, so a new kind of figure cannot silently vanish from the PDF.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .style import COLORS

MAX_PANELS = 4
MAX_AXES = 8  # a figure of 4 subplots prints 2 of its slider's states, one of 2 subplots 4
PANEL_SIZE = (3.6, 2.7)  # inches of one panel
WIDE_PANEL = (7.2, 3.0)  # one state of a figure with several subplots
DPI = 150
TRACE_TYPES = ("scatter", "bar", "heatmap", "image")
_DASHES = {"dash": "--", "dot": ":", "dashdot": "-.", "longdash": "--", "solid": "-", None: "-"}
_SYMBOLS = {"x": "x", "circle": "o", "circle-open": "o", "square": "s", "diamond": "D", "cross": "P"}
_TAGS = re.compile(r"<[^>]+>")


def figure_dict(fig: Any) -> dict:
    """A deep copy of ``fig`` (a ``go.Figure`` or its dict) as plain data, typed arrays decoded."""
    raw = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    return _decode(json.loads(json.dumps(raw, default=_jsonable)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot draw a value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    """Plotly's typed-array specs (``{"dtype": "f8", "bdata": ..., "shape": ...}``) as lists; the rest as is."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            if "shape" in value:
                shape = value["shape"]
                array = array.reshape([int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape)
            return array.tolist()
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# -- the states a slider or a menu can show ------------------------------------------------------------------------


def _set_path(target: dict, path: str, value: Any) -> None:
    """``target["a"]["b"][2]["c"] = value`` for ``path`` "a.b[2].c" (``None`` deletes, as plotly resets)."""
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    node = target
    for key, after in zip(keys[:-1], keys[1:], strict=True):
        container = list if isinstance(after, int) else dict  # what the next key indexes
        if isinstance(key, int):
            node.extend(container() for _ in range(key + 1 - len(node)))
            node = node[key]
        else:
            node = node.setdefault(key, container())
    if value is None and isinstance(node, dict):
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


def _restyle(fig: dict, changes: Mapping, traces: Sequence[int] | int | None) -> None:
    data = fig["data"]
    indices = list(range(len(data))) if traces is None else [traces] if isinstance(traces, int) else list(traces)
    for attr, value in changes.items():
        for j, i in enumerate(indices):
            item = value[j % len(value)] if isinstance(value, list) and value else value
            _set_path(data[i], attr, copy.deepcopy(item))


def _relayout(fig: dict, changes: Mapping) -> None:
    for path, value in changes.items():
        _set_path(fig.setdefault("layout", {}), path, copy.deepcopy(value))


def apply_step(fig: dict, step: Mapping) -> dict:
    """A copy of ``fig`` after a slider step or a menu button (``restyle``, ``relayout`` or ``update``)."""
    out, method, args = copy.deepcopy(fig), step.get("method", "restyle"), list(step.get("args", []))
    if method == "restyle":
        _restyle(out, args[0], args[1] if len(args) > 1 else None)
    elif method == "relayout":
        _relayout(out, args[0])
    elif method == "update":
        _restyle(out, args[0] if args else {}, args[2] if len(args) > 2 else None)
        if len(args) > 1:
            _relayout(out, args[1])
    elif method != "skip":
        raise ValueError(f"cannot print a figure step with method={method!r}")
    return out


def _panel_budget(fig: dict) -> int:
    """How many states to print: :data:`MAX_PANELS`, fewer for a figure of several subplots (at most 8 axes)."""
    return max(1, min(MAX_PANELS, MAX_AXES // len(_subplot_grid(fig))))


def _chosen(steps: Sequence[Mapping], active: int, wanted: Sequence | None, budget: int = MAX_PANELS) -> list[int]:
    labels = [str(s.get("label", i)) for i, s in enumerate(steps)]
    if wanted:
        missing = [w for w in wanted if str(w) not in labels]
        if missing:
            raise ValueError(f"print_steps={list(wanted)!r}: no step labelled {missing}; the labels are {labels}")
        return [labels.index(str(w)) for w in wanted]
    if len(steps) <= budget:
        return list(range(len(steps)))
    if budget == 1:
        return [active]
    picks = {round(i * (len(steps) - 1) / (budget - 1)) for i in range(budget)}
    if active not in picks:  # the state the page opens on is always printed
        picks.remove(min(picks, key=lambda p: abs(p - active)))
        picks.add(active)
    return sorted(picks)


def print_states(fig: Any) -> list[tuple[str, dict]]:
    """(label, figure) for each state the print edition shows: slider steps first, else menu buttons, else the
    figure as it opens."""
    fig = figure_dict(fig)
    layout = fig.get("layout", {})
    wanted = (layout.get("meta") or {}).get("print_steps") if isinstance(layout.get("meta"), dict) else None
    for key, items in (("sliders", "steps"), ("updatemenus", "buttons")):
        controls = layout.get(key) or []
        if controls and controls[0].get(items):
            control = controls[0]
            steps = control[items]
            prefix = _TAGS.sub("", str((control.get("currentvalue") or {}).get("prefix") or ""))
            indices = _chosen(steps, int(control.get("active", 0) or 0), wanted, _panel_budget(fig))
            return [(f"{prefix}{steps[i].get('label', i)}".strip(), apply_step(fig, steps[i])) for i in indices]
    return [("", fig)]


# -- drawing -----------------------------------------------------------------------------------------------------


def _plain(text: Any) -> str:
    """Plotly's HTML-ish text as plain text: ``<br>`` a new line, other tags dropped."""
    if isinstance(text, Mapping):
        text = text.get("text", "")
    return _TAGS.sub("", re.sub(r"<br\s*/?>", "\n", str(text or ""))).strip()


def _color(value: Any, default: str) -> Any:
    """A plotly colour as matplotlib takes it: ``rgb(...)``/``rgba(...)`` become tuples."""
    if not isinstance(value, str):
        return default
    match = re.fullmatch(r"rgba?\(([^)]*)\)", value.replace(" ", ""))
    if match:
        parts = [float(p) for p in match.group(1).split(",")]
        return (*[p / 255 for p in parts[:3]], parts[3] if len(parts) > 3 else 1.0)
    return value


def _values(values: Any) -> np.ndarray:
    """A trace's coordinates as an array (``None`` gaps as NaN; strings stay strings)."""
    items = list(values or [])
    if any(isinstance(v, str) for v in items):
        return np.array(items, dtype=object)
    return np.array([np.nan if v is None else v for v in items], dtype=float)


def _axis_names(trace: Mapping) -> tuple[str, str]:
    x, y = trace.get("xaxis", "x"), trace.get("yaxis", "y")
    return "xaxis" + x[1:], "yaxis" + y[1:]


def _subplot_grid(fig: dict) -> dict[tuple[str, str], tuple[int, int]]:
    """(xaxis, yaxis) name -> (row, col) from the axes' domains (plotly's ``make_subplots`` layout)."""
    layout = fig.get("layout", {})
    pairs = {_axis_names(t) for t in fig.get("data", [])} or {("xaxis", "yaxis")}
    xs = sorted({round((layout.get(x) or {}).get("domain", [0, 1])[0], 3) for x, _ in pairs})
    ys = sorted({round((layout.get(y) or {}).get("domain", [0, 1])[0], 3) for _, y in pairs}, reverse=True)
    grid = {}
    for x, y in pairs:
        col = xs.index(round((layout.get(x) or {}).get("domain", [0, 1])[0], 3))
        row = ys.index(round((layout.get(y) or {}).get("domain", [0, 1])[0], 3))
        grid[(x, y)] = (row, col)
    return grid


def _line_style(trace: Mapping, color: Any) -> dict:
    line = trace.get("line") or {}
    style = {"color": _color(line.get("color"), color), "linestyle": _DASHES.get(line.get("dash"), "-")}
    style["linewidth"] = 0.8 * float(line.get("width", 2))
    if line.get("shape") == "hv":
        style["drawstyle"] = "steps-post"
    return style


def _draw_scatter(ax, trace: Mapping, color: Any, label: str | None, previous: Mapping | None) -> None:
    y = _values(trace.get("y"))
    x = _values(trace["x"]) if trace.get("x") is not None else np.arange(len(y))
    mode = trace.get("mode") or ("lines+markers" if len(y) < 20 else "lines")
    fill = trace.get("fill")
    if fill == "toself":
        ax.fill(x, y, color=_color(trace.get("fillcolor"), color), linewidth=0, label=label)
    elif fill == "tonexty" and previous is not None:
        lower = _values(previous.get("y"))
        ax.fill_between(x, lower, y, color=_color(trace.get("fillcolor"), color), linewidth=0, label=label)
    if "lines" in mode and (trace.get("line") or {}).get("width", 2) != 0:
        ax.plot(x, y, label=label if not fill else None, **_line_style(trace, color))
    if "markers" in mode:
        marker = trace.get("marker") or {}
        symbol = str(marker.get("symbol", "circle"))
        color = _color(marker.get("color"), _line_style(trace, color)["color"])
        shape = _SYMBOLS.get(symbol, "o")
        colors = {"color": color} if shape in "xP" else {"facecolors": "none" if symbol.endswith("-open") else color,
                                                          "edgecolors": color}  # fmt: skip
        ax.scatter(x, y, s=float(marker.get("size", 6)) ** 2 * 0.5, marker=shape, zorder=3,
                   alpha=marker.get("opacity", trace.get("opacity", 1.0)), label=label if "lines" not in mode else None,
                   linewidths=1.5, **colors)  # fmt: skip
    if "text" in mode:
        texts = trace.get("text")
        texts = texts if isinstance(texts, list) else [texts] * len(x)
        for xi, yi, text in zip(x, y, texts, strict=False):
            if text:
                ax.annotate(_plain(text), (xi, yi), fontsize=7, ha="center", va="top", textcoords="offset points",
                            xytext=(0, -3))  # fmt: skip


def _draw_bars(ax, bars: list[tuple[Mapping, Any, str | None]], barmode: str | None) -> None:
    """Bar traces of one subplot: side by side when ``barmode`` is "group", else overlaid."""
    grouped = barmode == "group" and len(bars) > 1
    width = 0.8 / len(bars) if grouped else 0.8
    for k, (trace, color, label) in enumerate(bars):
        x, y = _values(trace.get("x")), _values(trace.get("y"))
        categorical = x.dtype == object
        positions = np.arange(len(x)) if categorical else x.astype(float)
        if not categorical and len(x) > 1:
            width = float(np.min(np.diff(np.sort(x)))) * (0.8 / len(bars) if grouped else 1.0)
        offset = (k - (len(bars) - 1) / 2) * width if grouped else 0.0
        base = _values(trace["base"]) if trace.get("base") is not None else None
        marker = trace.get("marker") or {}
        if trace.get("width") is not None:
            width = float(trace["width"])
        alpha = {"alpha": trace["opacity"]} if "opacity" in trace else {}  # else the colour's own alpha
        ax.bar(positions + offset, y, width=width, bottom=base, color=_color(marker.get("color"), color), label=label,
               **alpha)  # fmt: skip
        if categorical:
            ax.set_xticks(np.arange(len(x)), [_plain(v) for v in x], fontsize=7, rotation=45 if len(x) > 8 else 0)


def _colormap(scale: Any):
    from matplotlib.colors import LinearSegmentedColormap

    if isinstance(scale, str):
        return scale
    if isinstance(scale, list) and scale:
        return LinearSegmentedColormap.from_list("plotly", [(float(s), _color(c, "black")) for s, c in scale])
    return "viridis"


def _draw_heatmap(ax, trace: Mapping) -> None:
    z = np.array([[np.nan if v is None else v for v in row] for row in trace["z"]], dtype=float)
    kwargs = {"cmap": _colormap(trace.get("colorscale")), "vmin": trace.get("zmin"), "vmax": trace.get("zmax")}
    if trace.get("x") is not None and trace.get("y") is not None:
        mesh = ax.pcolormesh(_values(trace["x"]), _values(trace["y"]), z, shading="nearest", **kwargs)
    else:
        mesh = ax.imshow(z, aspect="auto", origin="lower", interpolation="nearest", **kwargs)
    if trace.get("showscale", True) is not False:
        ax.figure.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02).set_label(
            _plain((trace.get("colorbar") or {}).get("title", "")), fontsize=7
        )


def _draw_image(ax, trace: Mapping) -> None:
    import matplotlib.image as mpimg

    source = str(trace.get("source", ""))
    if not source.startswith("data:image/"):
        raise ValueError("an image trace prints only from a data: URI source")
    png = base64.b64decode(source.split(",", 1)[1])
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    ax.imshow(pixels, interpolation="nearest", cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=1)


def _style_axes(ax, layout: Mapping, xname: str, yname: str) -> None:
    from matplotlib.ticker import NullFormatter

    for name, axis in ((xname, "x"), (yname, "y")):
        spec = layout.get(name) or {}
        log = spec.get("type") == "log"
        if log:
            getattr(ax, f"set_{axis}scale")("log")
        title = _plain(spec.get("title", ""))
        if title:
            getattr(ax, f"set_{axis}label")(title, fontsize=8)
        if spec.get("range") and None not in spec["range"]:
            low, high = (10 ** float(v) for v in spec["range"]) if log else spec["range"]
            getattr(ax, f"set_{axis}lim")(low, high)
        if spec.get("tickvals") is not None:
            labels = spec.get("ticktext") or [f"{v:g}" for v in spec["tickvals"]]
            getattr(ax, f"set_{axis}ticks")(spec["tickvals"], [_plain(t) for t in labels])
            getattr(ax, f"{axis}axis").set_minor_formatter(NullFormatter())
        if spec.get("autorange") == "reversed":
            getattr(ax, f"invert_{axis}axis")()
        if spec.get("visible") is False or spec.get("showticklabels") is False:
            getattr(ax, f"{axis}axis").set_visible(False)
    if (layout.get(yname) or {}).get("scaleanchor"):
        ax.set_aspect("equal", adjustable="box")
    ax.tick_params(labelsize=7)


def _draw_shapes(ax, layout: Mapping, xname: str) -> None:
    """Lines from ``layout.shapes`` that belong to this subplot (vertical and horizontal rules)."""
    suffix = xname[5:]
    for shape in layout.get("shapes") or []:
        if shape.get("type", "line") != "line" or str(shape.get("xref", "x")).split(" ")[0] not in (f"x{suffix}",):
            continue
        line = shape.get("line") or {}
        style = {"color": _color(line.get("color"), "black"), "linestyle": _DASHES.get(line.get("dash"), "-")}
        if shape.get("x0") == shape.get("x1"):
            ax.axvline(shape["x0"], linewidth=1.2, **style)
        else:
            ax.plot([shape["x0"], shape["x1"]], [shape["y0"], shape["y1"]], linewidth=1.2, **style)


def _has_points(trace: Mapping) -> bool:
    return trace.get("type") in ("heatmap", "image") or any(v is not None for v in trace.get("y") or [])


def _draw_axes(ax, fig: dict, xname: str, yname: str) -> None:
    """Every trace of subplot (xname, yname) of ``fig`` on ``ax``."""
    layout, bars, previous = fig.get("layout", {}), [], None
    for i, trace in enumerate(fig.get("data", [])):
        kind = trace.get("type", "scatter")
        if kind not in TRACE_TYPES:
            raise ValueError(f"cannot print a {kind!r} trace; the print edition draws {TRACE_TYPES}")
        if _axis_names(trace) != (xname, yname) or trace.get("visible", True) in (False, "legendonly"):
            continue
        color = COLORS[i % len(COLORS)]
        shown = trace.get("showlegend", True) is not False and trace.get("name") and _has_points(trace)
        label = _plain(trace.get("name")) if shown else None
        if kind == "scatter":
            _draw_scatter(ax, trace, color, label, previous)
            previous = trace
        elif kind == "bar":
            bars.append((trace, color, label))
        elif kind == "heatmap":
            _draw_heatmap(ax, trace)
        else:
            _draw_image(ax, trace)
    if bars:
        _draw_bars(ax, bars, layout.get("barmode"))
    _draw_shapes(ax, layout, xname)
    _style_axes(ax, layout, xname, yname)


def _subplot_titles(fig: dict, grid: Mapping[tuple[str, str], tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The annotations ``make_subplots`` writes as subplot titles (paper coordinates above a subplot)."""
    layout, titles = fig.get("layout", {}), {}
    for note in layout.get("annotations") or []:
        if note.get("xref") != "paper" or note.get("yref") != "paper" or note.get("yanchor") != "bottom":
            continue
        for (x, y), cell in grid.items():
            xd, yd = (layout.get(x) or {}).get("domain", [0, 1]), (layout.get(y) or {}).get("domain", [0, 1])
            if (
                xd[0] - 0.01 <= float(note.get("x", -1)) <= xd[1] + 0.01
                and abs(float(note.get("y", -1)) - yd[1]) < 0.02
            ):
                titles[cell] = _plain(note.get("text"))
    return titles


def to_matplotlib(fig: Any, states: Sequence[tuple[str, dict]] | None = None):
    """The matplotlib twin of plotly figure ``fig``: one panel (or one row of subplots) per print state."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    states = list(states) if states is not None else print_states(fig)
    grid = _subplot_grid(states[0][1])
    rows, cols = max(r for r, _ in grid.values()) + 1, max(c for _, c in grid.values()) + 1
    single = rows == cols == 1
    across = min(2, len(states)) if single else 1
    down = -(-len(states) // across) * rows
    size = PANEL_SIZE if single else (WIDE_PANEL[0], WIDE_PANEL[1] * rows)
    width = size[0] * across if single else size[0]
    out = Figure(figsize=(width, size[1] * (down if single else len(states))), dpi=DPI, layout="constrained")
    axes = out.subplots(down, across * cols, squeeze=False)
    for k, (label, state) in enumerate(states):
        titles = _subplot_titles(state, grid)
        for (xname, yname), (r, c) in grid.items():
            row = (k // across) * rows + r
            ax = axes[row][(k % across) * cols + c]
            _draw_axes(ax, state, xname, yname)
            title = "\n".join(t for t in (label if r == 0 and c == 0 else "", titles.get((r, c), "")) if t)
            ax.set_title(title, fontsize=8)
    for extra in axes.flat[len(states) * len(grid) :]:
        extra.set_visible(False)
    _finish(out, states[0][1])
    return out


def _finish(out, fig: dict) -> None:
    """The figure's title on top and one legend for all panels below."""
    title = _plain(fig.get("layout", {}).get("title") or {})
    if title:
        out.suptitle(title, fontsize=9)
    handles, labels = {}, []
    for ax in out.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if labels:
        longest = max(len(lb) for lb in labels)
        ncols = min(len(labels), 1 if longest > 45 else 2 if longest > 25 else 3)
        out.legend([handles[lb] for lb in labels], labels, loc="outside lower center", ncols=ncols, fontsize=7,
                   frameon=False)  # fmt: skip


def png(fig: Any) -> bytes:
    """The twin of ``fig`` as PNG bytes."""
    buffer = io.BytesIO()
    to_matplotlib(fig).savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


_NEW_PLOT = re.compile(r"Plotly\.newPlot\(\s*")


def figures_in_html(html: str) -> list[tuple[str, dict]]:
    """(div id, figure dict) of every ``Plotly.newPlot`` call in a built page, in page order."""
    decoder, found = json.JSONDecoder(), []
    for match in _NEW_PLOT.finditer(html):
        pos, args = match.end(), []
        for _ in range(3):  # the div id, the data, the layout
            value, pos = decoder.raw_decode(html, pos)
            args.append(value)
            pos = re.compile(r"\s*,\s*").match(html, pos).end()
        found.append((args[0], _decode({"data": args[1], "layout": args[2]})))
    return found
