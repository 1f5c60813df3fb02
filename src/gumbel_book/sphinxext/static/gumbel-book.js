/* The Gumbel-Softmax Book: page behaviour the themes and extensions leave out
   (gumbel_book.sphinxext.offline serves this file on every page). */

/* 1. A solution's title opens it wherever it is clicked.
   sphinx-togglebutton makes an admonition's title its toggle, but sphinx-exercise puts a link
   ("Exercise 3 (...)") in a solution's title: a click on the link finds no button
   ("ReferenceError: button is not defined"), jumps to the exercise and leaves the solution shut.
   Clicks in such a title, outside the chevron button itself, are sent to the button instead. */
document.addEventListener(
  "click",
  (event) => {
    const title = event.target.closest(".admonition.toggle > .admonition-title");
    if (!title || event.target.closest(".toggle-button")) {
      return;
    }
    const button = title.querySelector(".toggle-button");
    if (!button) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    button.click();
  },
  true,
);

/* 2. Figures that fit their width, a phone's included.
   The figures are drawn at build time with one layout (gumbel_book.figures.style); plotly's
   `responsive` config resizes them, but a long title then runs under the toolbar or off the edge,
   a legend beside the plot squeezes it, subplot titles collide and labels are cut off. After a
   figure is drawn, and again after the window is resized, `fitFigure` measures what the reader
   would see and adjusts the layout, starting each time from the figure's own layout:
   - a title that meets the toolbar or does not fit is wrapped and put below the toolbar;
   - on a narrow figure (under 600 px) the legend goes below the plot, in rows;
   - subplot titles that collide are wrapped to their subplot's width;
   - text cut off by an edge widens that margin; a slider that covers tick labels moves down;
   - what is pushed down makes the figure taller, so that the plot keeps its height.
   Each pass measures again, until nothing is left to fix (or after a few passes). */
const gumbelBookFigures = (() => {
  const NARROW = 600;
  const MAX_PASSES = 12;
  const canvas = document.createElement("canvas").getContext("2d");

  const box = (node) => {
    const r = node.getBoundingClientRect();
    return { l: r.left, r: r.right, t: r.top, b: r.bottom, w: r.width, h: r.height };
  };
  const meets = (a, b) => a.l < b.r - 1 && b.l < a.r - 1 && a.t < b.b - 1 && b.t < a.b - 1;
  const shown = (node) => {
    const r = node.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && node.textContent.trim() !== "";
  };
  const clone = (value) => (value === undefined ? null : JSON.parse(JSON.stringify(value)));

  /** Words of `text` (plotly's `<br>` kept as breaks) in lines no wider than `width` px. */
  const wrap = (text, width, font) => {
    canvas.font = `${font.size}px ${font.family}`;
    const lines = [];
    for (const paragraph of String(text).split(/<br\s*\/?>/i)) {
      let line = "";
      for (const word of paragraph.split(/\s+/).filter(Boolean)) {
        const candidate = line ? `${line} ${word}` : word;
        if (line && canvas.measureText(candidate.replace(/<[^>]+>/g, "")).width > width) {
          lines.push(line);
          line = word;
        } else {
          line = candidate;
        }
      }
      lines.push(line);
    }
    return lines.join("<br>");
  };

  /** The parts of the layout that fitting changes, as the figure's author wrote them. */
  const ORIGINAL_KEYS = ["title", "legend", "margin", "height", "annotations", "sliders"];
  const original = (gd) => {
    if (!gd._gumbelBookOriginal) {
      gd._gumbelBookOriginal = Object.fromEntries(ORIGINAL_KEYS.map((k) => [k, clone(gd.layout[k])]));
    }
    return gd._gumbelBookOriginal;
  };

  const texts = (root, selector) => [...root.querySelectorAll(selector)].filter(shown);
  const outside = (b, a) => b.l < a.l - 1 || b.r > a.r + 1 || b.t < a.t - 1 || b.b > a.b + 1;

  /** What a rule sees of a drawn figure, and how it asks for a change. */
  const measure = (gd, state) => {
    const full = gd._fullLayout;
    const modebar = gd.querySelector(".modebar");
    const f = {
      gd, full, state,
      svg: box(gd.querySelector(".main-svg")),
      bar: modebar ? box(modebar) : null,
      title: texts(gd, ".gtitle")[0],
      notes: texts(gd, ".annotation-text"),
      update: {},
      grow: 0,
      margin: { ...full.margin },
    };
    /** Widen one margin by `px` (a top or bottom one makes the figure as much taller). */
    f.push = (side, px) => {
      f.margin[side] = Math.ceil(f.margin[side] + px + 4);
      f.update.margin = { l: f.margin.l, r: f.margin.r, t: f.margin.t, b: f.margin.b, pad: f.margin.pad || 0 };
      if (side === "t" || side === "b") f.grow += Math.ceil(px + 4);
    };
    return f;
  };

  /** The rules, in order; each returns true when it asked for a change (one change per pass). */
  const RULES = [
    // The legend of a narrow figure goes below everything, in rows.
    function moveLegend({ gd, full, state, update }) {
      if (full.width >= NARROW || !full.showlegend || state.legendMoved || !gd.querySelector(".legend")) return false;
      state.legendMoved = true;
      update.legend = {
        ...clone(gd.layout.legend || {}),
        orientation: "h", x: 0, xanchor: "left", xref: "container", y: 0, yanchor: "bottom", yref: "container",
      };
      return true;
    },
    // ... and then nothing may reach down to it: the bottom margin grows.
    function clearLegend({ gd, full, svg, state, push }) {
      const legend = gd.querySelector(".legend");
      if (!state.legendMoved || !legend || !shown(legend)) return false;
      const plotBottom = svg.t + full._size.t + full._size.h;
      const above = [...texts(gd, ".xtick text"), ...texts(gd, ".g-xtitle text"), ...gd.querySelectorAll("g.slider-container")];
      const lowest = Math.max(plotBottom, ...above.map((n) => box(n).b));
      if (box(legend).t >= lowest + 4) return false;
      push("b", lowest + 4 - box(legend).t);
      return true;
    },
    // A title that meets the toolbar or the right edge: wrapped to the width, below the toolbar.
    function moveTitle({ gd, full, svg, bar, title, state, update, margin, push }) {
      if (!title || state.titleMoved || !((bar && meets(box(title), bar)) || box(title).r > svg.r - 2)) return false;
      state.titleMoved = true;
      const font = full.title.font;
      const text = wrap(gd.layout.title.text || gd.layout.title, svg.w - 24, font);
      state.titleTop = bar ? bar.b - svg.t + 4 : 8; // px from the figure's top; fitFigure makes it a fraction
      update.title = {
        ...clone(typeof gd.layout.title === "object" ? gd.layout.title : {}),
        text, x: 12 / full.width, xref: "container", xanchor: "left", yref: "container", yanchor: "top",
        pad: { t: 0, b: 0, l: 0, r: 0 }, automargin: false,
      };
      push("t", Math.max(0, state.titleTop + text.split("<br>").length * font.size * 1.3 + 8 - margin.t));
      return true;
    },
    // A moved title that still meets the toolbar (plotly places a title from its first line): lower it.
    function lowerTitle({ bar, title, state, update, push }) {
      if (!title || !state.titleMoved || !bar || !meets(box(title), bar)) return false;
      state.titleTop += bar.b + 3 - box(title).t;
      update["title.yref"] = "container";
      push("t", bar.b + 3 - box(title).t);
      return true;
    },
    // Subplot titles (and other notes) that collide: wrapped to the distance between them, then smaller.
    function separateNotes({ gd, full, svg, notes, state, update }) {
      const collide = notes.some((n, i) => notes.slice(i + 1).some((m) => meets(box(n), box(m))));
      if (!collide || (state.noteShrinks || 0) >= 4) return false;
      const centres = notes.map((n) => (box(n).l + box(n).r) / 2).sort((a, b) => a - b);
      const gaps = centres.slice(1).map((c, k) => c - centres[k]).filter((g) => g > 20);
      const width = Math.max(50, Math.min(svg.w - 24, ...gaps) - 8);
      const shrink = state.notesWrapped ? 2 : 0;
      state.noteShrinks = (state.noteShrinks || 0) + (shrink ? 1 : 0);
      state.notesWrapped = true;
      update.annotations = clone(gd.layout.annotations).map((a, k) => {
        const font = { ...((full.annotations[k] && full.annotations[k].font) || full.font) };
        font.size = Math.max(10, font.size - shrink);
        if (shrink) a.font = { ...(a.font || {}), size: font.size };
        if (a.text) a.text = wrap(String(a.text).replace(/<br\s*\/?>/gi, " "), width, font);
        return a;
      });
      return true;
    },
    // A subplot title on an axis title (stacked subplots, squeezed): the figure grows taller.
    function tallerForNotes({ gd, full, notes, state, update }) {
      const axisTitles = [...gd.querySelectorAll(".infolayer g")]
        .filter((g) => /^g-[xy]\d*title$/.test(g.getAttribute("class") || ""))
        .flatMap((g) => texts(g, "text"));
      const hit = notes.some((n) => axisTitles.some((a) => meets(box(n), box(a))));
      if (!hit || (state.taller || 0) >= 6) return false;
      state.taller = (state.taller || 0) + 1;
      update.height = full.height + 60;
      return true;
    },
    // A legend entry wider than the figure: its name wraps (a trace's name is data: restyled).
    function wrapLegendNames(f) {
      const { gd, full, svg, state } = f;
      if (!state.legendMoved || state.namesWrapped) return false;
      const long = [...gd.querySelectorAll(".legend g.traces")].filter((g) => box(g).r > svg.r - 2);
      const indices = long.map(traceIndex);
      if (!indices.length || !indices.every(Number.isInteger)) return false;
      state.namesWrapped = true;
      const names = indices.map((i) => wrap(gd.data[i].name || "", svg.w - 60, full.legend.font));
      f.restyle = { change: { name: names }, indices, undo: { name: indices.map((i) => gd.data[i].name) } };
      return true;
    },
    // Something under the toolbar, or on the title: the plot moves down.
    function clearTop({ gd, full, svg, bar, title, notes, push }) {
      for (const node of [...notes, ...texts(gd, ".legend")]) {
        const b = box(node);
        const underBar = bar && meets(b, bar) ? bar.b : -Infinity;
        const onTitle = title && meets(b, box(title)) ? box(title).b : -Infinity;
        const limit = Math.max(underBar, onTitle);
        if (limit > -Infinity && b.t < svg.t + full.margin.t + 1) {
          push("t", limit - b.t + 2);
          return true;
        }
      }
      return false;
    },
    // Text of a trace cut off by the edge of its plot (the corner labels of a simplex, say): drawn whole.
    function unclipText(f) {
      const { gd, state } = f;
      if (state.unclipped) return false;
      const clipped = new Set();
      for (const node of texts(gd, ".scatterlayer .textpoint text")) {
        const subplot = node.closest("g.subplot");
        const id = subplot && [...subplot.classList].find((c) => c !== "subplot");
        const area = id && gd.querySelector(`.draglayer g.${id} rect.nsewdrag`);
        const index = traceIndex(node.closest("g.trace"));
        if (area && Number.isInteger(index) && outside(box(node), box(area))) clipped.add(index);
      }
      if (!clipped.size) return false;
      state.unclipped = true;
      const indices = [...clipped];
      f.restyle = { change: { cliponaxis: false }, indices, undo: { cliponaxis: indices.map(() => true) } };
      return true;
    },
    // Text cut off by an edge of the figure: that margin widens (legend and title text aside: they wrap;
    // and never so far that the plot keeps under half the width).
    function widenMargins({ gd, full, svg, margin, push, update }) {
      const cut = { l: 0, r: 0, b: 0 };
      for (const node of texts(gd, "text").filter((n) => !n.closest(".legend") && !n.closest(".g-gtitle"))) {
        const b = box(node);
        cut.l = Math.max(cut.l, svg.l - b.l);
        cut.r = Math.max(cut.r, b.r - svg.r);
        cut.b = Math.max(cut.b, b.b - svg.b);
      }
      for (const side of ["l", "r"]) {
        if (cut[side] > 1 && margin.l + margin.r + cut[side] < full.width / 2) push(side, cut[side]);
      }
      if (cut.b > 1) push("b", cut.b);
      return Boolean(update.margin);
    },
    // A slider over the tick labels or the axis title: the slider moves down.
    function lowerSliders(f) {
      const { gd, update } = f;
      const labels = [...texts(gd, ".xtick text"), ...texts(gd, ".g-xtitle text")];
      [...gd.querySelectorAll("g.slider-container")].forEach((slider, k) => {
        const s = box(slider);
        const lowest = Math.max(...labels.filter((n) => meets(box(n), s)).map((n) => box(n).b));
        if (lowest === -Infinity) return;
        const sliders = update.sliders || clone(gd.layout.sliders);
        sliders[k].pad = { ...(sliders[k].pad || {}), t: ((sliders[k].pad || {}).t || 0) + lowest - s.t + 6 };
        update.sliders = sliders;
        f.grow += Math.ceil(lowest - s.t + 6);
      });
      return Boolean(update.sliders);
    },
  ];

  /** The index of the trace a legend entry or a trace's group draws. */
  function traceIndex(group) {
    const d = group && group.__data__ && group.__data__[0];
    const item = Array.isArray(d) ? d[0] : d;
    return item && item.trace ? item.trace.index : undefined;
  }

  /** Undo what fitting changed, so that each fit starts from the figure's own layout. */
  const restore = async (gd, boxes) => {
    for (const { indices, undo } of (gd._gumbelBookRestyled || []).reverse()) {
      await Plotly.restyle(gd, undo, indices);
    }
    gd._gumbelBookRestyled = [];
    if (gd._gumbelBookChanged) {
      await Plotly.relayout(gd, clone(original(gd)));
      boxes.forEach((el, k) => (el.style.height = gd._gumbelBookHeights[k]));
      gd._gumbelBookChanged = false;
    }
  };

  const fitFigure = async (gd) => {
    if (!gd._fullLayout || gd._gumbelBookFitting || gd._gumbelBookWidth === gd.clientWidth) return;
    gd._gumbelBookFitting = true;
    try {
      original(gd);
      // plotly.py's HTML sets the figure's height on its box and on the box's parent: they grow with it
      const boxes = [gd, gd.parentElement].filter((el) => el && el.style.height);
      if (gd._gumbelBookHeights === undefined) gd._gumbelBookHeights = boxes.map((el) => el.style.height);
      await restore(gd, boxes);
      const state = {};
      for (let pass = 0; pass < MAX_PASSES; pass++) {
        const f = measure(gd, state);
        if (!RULES.some((rule) => rule(f))) break;
        if (f.restyle) {
          gd._gumbelBookRestyled.push(f.restyle);
          await Plotly.restyle(gd, f.restyle.change, f.restyle.indices);
          continue;
        }
        const update = f.update;
        if (f.grow) update.height = gd._fullLayout.height + f.grow;
        if (update.height) boxes.forEach((el) => (el.style.height = `${update.height}px`));
        if (state.titleMoved) {
          const y = 1 - state.titleTop / (update.height || gd._fullLayout.height);
          if (update.title) update.title.y = y;
          else update["title.y"] = y;
        }
        gd._gumbelBookChanged = true;
        await Plotly.relayout(gd, update);
      }
      gd._gumbelBookWidth = gd.clientWidth;
    } finally {
      gd._gumbelBookFitting = false;
    }
  };

  const fitAll = () =>
    Promise.all([...document.querySelectorAll(".plotly-graph-div")].filter((gd) => gd._fullLayout).map(fitFigure));

  let resizeTimer = null;
  /** Every figure drawn (plotly.py's inline scripts start drawing while the page loads), or 10 s gone. */
  const drawn = () =>
    new Promise((resolve) => {
      const started = Date.now();
      const poll = () => {
        const figures = [...document.querySelectorAll(".plotly-graph-div")];
        if (figures.every((gd) => gd._fullLayout && gd.querySelector(".main-svg")) || Date.now() - started > 10000) {
          resolve();
        } else {
          setTimeout(poll, 50);
        }
      };
      poll();
    });
  const ready = new Promise((resolve) => {
    const start = () => drawn().then(fitAll).then(resolve, resolve);
    if (document.readyState === "complete") start();
    else window.addEventListener("load", start);
  });
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(fitAll, 250);
  });
  return { ready, fitFigure, fitAll };
})();
window.gumbelBookFigures = gumbelBookFigures;
