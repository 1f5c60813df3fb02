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

  const texts = (gd, selector) => [...gd.querySelectorAll(selector)].filter(shown);

  /** One pass: what is wrong now, as a relayout update (empty when the figure is fine). */
  const fixes = (gd, state) => {
    const full = gd._fullLayout;
    const svg = box(gd.querySelector(".main-svg"));
    const modebar = gd.querySelector(".modebar");
    const bar = modebar ? box(modebar) : null;
    const title = texts(gd, ".gtitle")[0];
    const notes = texts(gd, ".annotation-text");
    const update = {};
    const margin = { ...full.margin };
    let grow = 0;
    const push = (side, px) => {
      margin[side] = Math.ceil(margin[side] + px + 4);
      update.margin = { l: margin.l, r: margin.r, t: margin.t, b: margin.b, pad: margin.pad || 0 };
      if (side === "t" || side === "b") grow += Math.ceil(px + 4);
    };

    // The legend of a narrow figure goes below everything, in rows: then nothing may reach down to it.
    if (full.width < NARROW && full.showlegend && !state.legendMoved && gd.querySelector(".legend")) {
      state.legendMoved = true;
      update.legend = {
        ...clone(gd.layout.legend || {}),
        orientation: "h", x: 0, xanchor: "left", xref: "container", y: 0, yanchor: "bottom", yref: "container",
      };
      return { update, grow };
    }
    const legend = gd.querySelector(".legend");
    if (state.legendMoved && legend && shown(legend)) {
      const plotBottom = svg.t + full._size.t + full._size.h;
      const above = [...texts(gd, ".xtick text"), ...texts(gd, ".g-xtitle text"), ...gd.querySelectorAll("g.slider-container")];
      const lowest = Math.max(plotBottom, ...above.map((n) => box(n).b));
      if (box(legend).t < lowest + 4) {
        push("b", lowest + 4 - box(legend).t);
        return { update, grow };
      }
    }

    // A title that meets the toolbar or the right edge: wrapped to the width, below the toolbar.
    if (title && !state.titleMoved && ((bar && meets(box(title), bar)) || box(title).r > svg.r - 2)) {
      state.titleMoved = true;
      const font = full.title.font;
      const text = wrap(gd.layout.title.text || gd.layout.title, svg.w - 24, font);
      const top = bar ? bar.b - svg.t + 4 : 8;
      state.titleTop = top; // px from the figure's top; fitFigure turns it into plotly's fraction
      const lines = text.split("<br>").length;
      update.title = {
        ...clone(typeof gd.layout.title === "object" ? gd.layout.title : {}),
        text, x: 12 / full.width, xref: "container", xanchor: "left", yref: "container", yanchor: "top", pad: { t: 0, b: 0, l: 0, r: 0 }, automargin: false,
      };
      push("t", Math.max(0, top + lines * font.size * 1.3 + 8 - margin.t));
      return { update, grow };
    }

    // A moved title that still meets the toolbar (plotly places a title's lines from its first): lower it.
    if (title && state.titleMoved && bar && meets(box(title), bar)) {
      state.titleTop += bar.b + 3 - box(title).t;
      update["title.yref"] = "container";
      push("t", bar.b + 3 - box(title).t);
      return { update, grow };
    }

    // Subplot titles (and other notes) that collide: wrapped to the distance between them, then smaller.
    const colliding = new Set();
    for (let i = 0; i < notes.length; i++) {
      for (let j = i + 1; j < notes.length; j++) {
        if (meets(box(notes[i]), box(notes[j]))) colliding.add(i).add(j);
      }
    }
    if (colliding.size && (state.noteShrinks || 0) < 4) {
      const annotations = clone(gd.layout.annotations);
      const centres = notes.map((n) => (box(n).l + box(n).r) / 2).sort((a, b) => a - b);
      const gaps = centres.slice(1).map((c, k) => c - centres[k]).filter((g) => g > 20);
      const width = Math.max(50, Math.min(svg.w - 24, ...gaps) - 8);
      const shrink = state.notesWrapped ? 2 : 0;
      state.noteShrinks = (state.noteShrinks || 0) + (shrink ? 1 : 0);
      state.notesWrapped = true;
      annotations.forEach((a, k) => {
        const font = { ...((full.annotations[k] && full.annotations[k].font) || full.font) };
        font.size = Math.max(10, font.size - shrink);
        if (shrink) a.font = { ...(a.font || {}), size: font.size };
        if (a.text) a.text = wrap(String(a.text).replace(/<br\s*\/?>/gi, " "), width, font);
      });
      update.annotations = annotations;
      return { update, grow };
    }

    // A subplot title on an axis title (stacked subplots, squeezed): the figure grows taller.
    const axisTitles = [...gd.querySelectorAll(".infolayer g")]
      .filter((g) => /^g-[xy]\d*title$/.test(g.getAttribute("class") || ""))
      .flatMap((g) => texts(g, "text"));
    if (notes.some((n) => axisTitles.some((a) => meets(box(n), box(a)))) && (state.taller || 0) < 6) {
      state.taller = (state.taller || 0) + 1;
      grow += 60;
      update.height = full.height + 60;
      return { update, grow };
    }

    // A legend entry wider than the figure: its name wraps (a trace's name is data: restyled).
    if (state.legendMoved && !state.namesWrapped) {
      const long = [...gd.querySelectorAll(".legend g.traces")].filter((g) => box(g).r > svg.r - 2);
      const traceOf = (g) => {
        const d = g.__data__ && g.__data__[0];
        const item = Array.isArray(d) ? d[0] : d;
        return item && item.trace ? item.trace.index : undefined;
      };
      const indices = long.map(traceOf);
      if (indices.length && indices.every((i) => Number.isInteger(i))) {
        state.namesWrapped = true;
        const names = indices.map((i) => wrap(gd.data[i].name || "", svg.w - 60, full.legend.font));
        return { update, grow, restyle: [{ name: names }, indices], names: indices.map((i) => gd.data[i].name) };
      }
    }

    // Something under the toolbar, or colliding with the title: the plot moves down.
    const top = [...notes, ...texts(gd, ".legend")];
    for (const node of top) {
      const b = box(node);
      const limit = Math.max(bar && meets(b, bar) ? bar.b : -Infinity, title && meets(b, box(title)) ? box(title).b : -Infinity);
      if (limit > -Infinity && b.t < svg.t + full.margin.t + 1) {
        push("t", limit - b.t + 2);
        return { update, grow };
      }
    }

    // Text of a trace cut off by the edge of its plot (the corner labels of a simplex, say): drawn whole.
    const clippedTraces = new Set();
    for (const node of texts(gd, ".scatterlayer .textpoint text")) {
      const subplot = node.closest("g.subplot");
      const id = subplot && [...subplot.classList].find((c) => c !== "subplot");
      const area = id && gd.querySelector(`.draglayer g.${id} rect.nsewdrag`);
      const trace = node.closest("g.trace");
      if (area && trace && trace.__data__ && !state.unclipped) {
        const a = box(area);
        const b = box(node);
        if (b.l < a.l - 1 || b.r > a.r + 1 || b.t < a.t - 1 || b.b > a.b + 1) clippedTraces.add(trace.__data__[0].trace.index);
      }
    }
    if (clippedTraces.size) {
      state.unclipped = true;
      return { update, grow, restyle: [{ cliponaxis: false }, [...clippedTraces]], names: null };
    }

    // Text cut off by an edge of the figure: that margin widens (legend and title text excepted, wrapped
    // above; and never so far that the plot keeps under half the width).
    const all = texts(gd, "text").filter((n) => !n.closest(".legend") && !n.closest(".g-gtitle"));
    const cut = { l: 0, r: 0, t: 0, b: 0 };
    for (const node of all) {
      const b = box(node);
      cut.l = Math.max(cut.l, svg.l - b.l);
      cut.r = Math.max(cut.r, b.r - svg.r);
      cut.b = Math.max(cut.b, b.b - svg.b);
    }
    for (const side of ["l", "r"]) {
      if (cut[side] > 1 && margin.l + margin.r + cut[side] < full.width / 2) push(side, cut[side]);
    }
    if (cut.b > 1) push("b", cut.b);
    if (update.margin) return { update, grow };

    // A slider over the tick labels or the axis title: the slider moves down.
    const labels = [...texts(gd, ".xtick text"), ...texts(gd, ".g-xtitle text")];
    const sliders = [...gd.querySelectorAll("g.slider-container")];
    sliders.forEach((slider, k) => {
      const s = box(slider);
      const lowest = Math.max(...labels.filter((n) => meets(box(n), s)).map((n) => box(n).b));
      if (lowest > -Infinity) {
        const sliders = update.sliders || clone(gd.layout.sliders);
        sliders[k].pad = { ...(sliders[k].pad || {}), t: ((sliders[k].pad || {}).t || 0) + lowest - s.t + 6 };
        update.sliders = sliders;
        grow += Math.ceil(lowest - s.t + 6);
      }
    });
    return { update, grow };
  };

  const fitFigure = async (gd) => {
    if (!gd._fullLayout || gd._gumbelBookFitting) return;
    gd._gumbelBookFitting = true;
    try {
      const saved = original(gd);
      const boxes = [gd, gd.parentElement].filter((el) => el && el.style.height);
      if (gd._gumbelBookHeights === undefined) gd._gumbelBookHeights = boxes.map((el) => el.style.height);
      for (const [[change, indices], names] of (gd._gumbelBookRestyled || []).reverse()) {
        await Plotly.restyle(gd, names ? { name: names } : { cliponaxis: true }, indices);
      }
      gd._gumbelBookRestyled = null;
      if (gd._gumbelBookChanged) {
        await Plotly.relayout(gd, clone(saved));
        boxes.forEach((el, k) => (el.style.height = gd._gumbelBookHeights[k]));
        gd._gumbelBookChanged = false;
      }
      const state = {};
      for (let pass = 0; pass < MAX_PASSES; pass++) {
        const { update, grow, restyle, names } = fixes(gd, state);
        if (restyle) {
          gd._gumbelBookRestyled = [...(gd._gumbelBookRestyled || []), [restyle, names]];
          await Plotly.restyle(gd, ...restyle);
          continue;
        }
        if (!Object.keys(update).length) break;
        if (grow) {
          update.height = gd._fullLayout.height + grow;
          // plotly.py's HTML sets the height on the figure's box: it makes room for what the figure gained
          boxes.forEach((el) => (el.style.height = `${update.height}px`));
        }
        if (state.titleMoved) {
          const y = 1 - state.titleTop / (update.height || gd._fullLayout.height);
          if (update.title) update.title.y = y;
          else update["title.y"] = y;
        }
        gd._gumbelBookChanged = true;
        await Plotly.relayout(gd, update);
      }
    } finally {
      gd._gumbelBookFitting = false;
    }
  };

  const fitAll = () =>
    Promise.all([...document.querySelectorAll(".plotly-graph-div")].filter((gd) => gd._fullLayout).map(fitFigure));

  let resizeTimer = null;
  const ready = new Promise((resolve) => {
    const start = () => fitAll().then(resolve, resolve);
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
