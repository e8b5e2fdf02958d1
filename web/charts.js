// Small SVG charts for the dashboard: lines over time and grouped bars, nothing more.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART_W = 300;
const CHART_H = 120;
const PAD = { left: 30, right: 6, top: 8, bottom: 16 };

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, value);
  return element;
}

function emptyChart(container, message) {
  const note = document.createElement("div");
  note.className = "empty";
  note.textContent = message;
  container.replaceChildren(note);
}

function frame(maxValue) {
  const svg = svgElement("svg", { viewBox: `0 0 ${CHART_W} ${CHART_H}`, role: "img" });
  const top = maxValue > 0 ? maxValue : 1;
  const y = (value) => PAD.top + (CHART_H - PAD.top - PAD.bottom) * (1 - value / top);
  for (const tick of [0, top / 2, top]) {
    svg.appendChild(svgElement("line", {
      x1: PAD.left, x2: CHART_W - PAD.right, y1: y(tick), y2: y(tick), stroke: "#e3e6ec",
    }));
    const label = svgElement("text", {
      x: PAD.left - 4, y: y(tick) + 3, "text-anchor": "end", "font-size": 9, fill: "#667085",
    });
    label.textContent = tick >= 100 ? Math.round(tick) : Math.round(tick * 100) / 100;
    svg.appendChild(label);
  }
  return { svg, y };
}

// series: [{name, color, values: [number|null]}], all the same length.
function lineChart(container, series) {
  const length = Math.max(0, ...series.map((s) => s.values.length));
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  if (length === 0 || all.length === 0) return emptyChart(container, "no data yet");
  const { svg, y } = frame(Math.max(...all));
  const x = (i) => PAD.left + (CHART_W - PAD.left - PAD.right) * (length === 1 ? 0.5 : i / (length - 1));
  for (const line of series) {
    const points = line.values.map((v, i) => (v === null || v === undefined ? null : `${x(i)},${y(v)}`));
    const segments = points.join(" ").split(/\s*null\s*/).filter((part) => part.trim());
    for (const part of segments) {
      svg.appendChild(svgElement("polyline", {
        points: part, fill: "none", stroke: line.color, "stroke-width": 2,
      }));
    }
  }
  container.replaceChildren(svg, legend(series));
}

// groups: [{label, bars: [{name, color, value}]}]
function barChart(container, groups) {
  const values = groups.flatMap((g) => g.bars.map((b) => b.value));
  if (values.length === 0) return emptyChart(container, "no data yet");
  const { svg, y } = frame(Math.max(...values));
  const width = (CHART_W - PAD.left - PAD.right) / groups.length;
  groups.forEach((group, i) => {
    const barWidth = (width * 0.8) / group.bars.length;
    group.bars.forEach((bar, j) => {
      const left = PAD.left + i * width + width * 0.1 + j * barWidth;
      svg.appendChild(svgElement("rect", {
        x: left, y: y(bar.value), width: Math.max(barWidth - 1, 1),
        height: Math.max(y(0) - y(bar.value), 0), fill: bar.color,
      }));
    });
    const label = svgElement("text", {
      x: PAD.left + i * width + width / 2, y: CHART_H - 3, "text-anchor": "middle",
      "font-size": 9, fill: "#667085",
    });
    label.textContent = group.label;
    svg.appendChild(label);
  });
  container.replaceChildren(svg, legend(groups[0].bars));
}

function legend(items) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const item of items) {
    const swatch = document.createElement("i");
    swatch.style.background = item.color;
    box.appendChild(swatch);
    box.appendChild(document.createTextNode(item.name));
  }
  return box;
}

window.charts = { lineChart, barChart };
