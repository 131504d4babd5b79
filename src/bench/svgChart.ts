// The bench's chart as a standalone SVG: speedup over plain decoding per method and category
// (bars, with each method's bound tau / c(pass) as a tick), and the pass-cost curve c(n) / (n c(1)).
import type { PassCostTable } from "../planner/passCost.js";
import { bestCost } from "../planner/passCost.js";
import type { BenchResult } from "./runBench.js";

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

export function benchSvg(results: readonly BenchResult[], cost: PassCostTable, title: string): string {
  const methods = [...new Set(results.map((r) => r.method))];
  const categories = [...new Set(results.map((r) => r.category))];
  const W = 900, barH = 260, top = 50, left = 60, gap = 24;
  const groupW = (W - left - 20) / categories.length;
  const barW = Math.max(4, (groupW - gap) / methods.length);
  const maxY = Math.max(1.5, ...results.map((r) => Math.max(r.speedup, Math.min(r.bound, 6)))) * 1.1;
  const y = (v: number) => top + barH - (v / maxY) * barH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${top + barH + 260}" font-family="sans-serif" font-size="12">`);
  out.push(`<text x="${left}" y="24" font-size="15">${esc(title)}</text>`);
  out.push(`<text x="${left}" y="40" fill="#555">speedup over plain decoding, same run (bar); tick: bound tau / c(pass)</text>`);
  for (let v = 0; v <= maxY; v += maxY > 4 ? 1 : 0.5) {
    out.push(`<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 1 ? "#000" : "#ddd"}"/><text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}x</text>`);
  }
  categories.forEach((c, ci) => {
    const x0 = left + ci * groupW + gap / 2;
    out.push(`<text x="${x0 + (methods.length * barW) / 2}" y="${top + barH + 16}" text-anchor="middle">${esc(c)}</text>`);
    methods.forEach((m, mi) => {
      const r = results.find((x) => x.method === m && x.category === c);
      if (!r) return;
      const x = x0 + mi * barW;
      out.push(`<rect x="${x}" y="${y(r.speedup)}" width="${barW - 2}" height="${y(0) - y(r.speedup)}" fill="${COLORS[mi % COLORS.length]}"><title>${esc(`${m} / ${c}: ${r.speedup.toFixed(2)}x, tau ${r.tau.toFixed(2)}, bound ${r.bound.toFixed(2)}x`)}</title></rect>`);
      if (m !== "none") out.push(`<line x1="${x}" x2="${x + barW - 2}" y1="${y(Math.min(r.bound, maxY))}" y2="${y(Math.min(r.bound, maxY))}" stroke="#000" stroke-width="2"/>`);
    });
  });
  methods.forEach((m, mi) => out.push(`<rect x="${left + mi * 110}" y="${top + barH + 28}" width="10" height="10" fill="${COLORS[mi % COLORS.length]}"/><text x="${left + mi * 110 + 14}" y="${top + barH + 37}">${esc(m)}</text>`));
  // c(n) / (n · c(1)): what a pass over n tokens costs per token, relative to n one-token passes.
  const cy0 = top + barH + 70, ch = 150, cw = W - left - 20;
  const sizes = cost.sizes;
  const nMax = sizes[sizes.length - 1];
  const c1 = bestCost(cost, 1).ms;
  const px = (n: number) => left + ((n - 1) / Math.max(1, nMax - 1)) * cw;
  const py = (v: number) => cy0 + ch - Math.min(1.2, v) / 1.2 * ch;
  out.push(`<text x="${left}" y="${cy0 - 8}" fill="#555">pass cost per token c(n) / (n c(1)) — 1 = no cheaper than n one-token passes; c(1) = ${c1.toFixed(2)} ms</text>`);
  for (const v of [0.25, 0.5, 0.75, 1]) out.push(`<line x1="${left}" x2="${left + cw}" y1="${py(v)}" y2="${py(v)}" stroke="${v === 1 ? "#000" : "#ddd"}"/><text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v}</text>`);
  const pts = sizes.map((n) => `${px(n).toFixed(1)},${py(bestCost(cost, n).ms / (n * c1)).toFixed(1)}`).join(" ");
  out.push(`<polyline points="${pts}" fill="none" stroke="#e15759" stroke-width="2"/>`);
  for (const n of sizes) out.push(`<text x="${px(n)}" y="${cy0 + ch + 14}" text-anchor="middle" font-size="10">${n}</text>`);
  out.push(`</svg>`);
  return out.join("\n");
}
