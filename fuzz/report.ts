// The campaign's summary: a table per target and the failures grouped by signature.

import { FAILURES, type CampaignResult } from "./campaign.js";
import { OPEN_ELSEWHERE } from "./knownIssues.js";
import { OUTCOME_HEADINGS, OUTCOMES } from "./outcome.js";
import { markdownTable } from "./specdec.js";
import { TARGET_NAMES } from "./targets/target.js";

export function summaryTable(r: CampaignResult): string {
  const header = ["target", "cases", ...OUTCOMES.map((o) => OUTCOME_HEADINGS[o]), "open elsewhere", "mean ms", "slowest ms", "peak MiB"];
  const rows = TARGET_NAMES.filter((t) => r.tallies[t].cases > 0).map((t) => {
    const x = r.tallies[t];
    const known = Object.entries(x.known).map(([id, n]) => `${n} (${id})`).join(", ") || "0";
    return [t, String(x.cases), ...OUTCOMES.map((o) => String(x.outcomes[o])), known, (x.totalMs / x.cases).toFixed(1), x.slowestMs.toFixed(0), String(x.peakMiB)];
  });
  return markdownTable(header, rows);
}

export function failureList(r: CampaignResult): string {
  if (r.failures.length === 0) return "No failures.";
  const lines: string[] = [];
  for (const g of r.failures) {
    lines.push(`- ${g.target} ${g.outcome}${g.known ? ` [open elsewhere: ${g.known}]` : ""} × ${g.count}: ${g.signature}`);
    for (const [i, e] of g.examples.entries()) {
      lines.push(`    ${e.id}${e.seedName ? ` (${e.seedName})` : ""}: ${e.what.join("; ").slice(0, 300)}`);
      lines.push(`      -> ${e.verdict.detail.slice(0, 300)}`);
      if (g.reproducers[i]) lines.push(`      reproducer: ${g.reproducers[i]}`);
    }
  }
  const known = OPEN_ELSEWHERE.filter((k) => r.failures.some((g) => g.known === k.id));
  if (known.length > 0) lines.push("", "Open elsewhere (not counted as failures of this branch):", ...known.map((k) => `- ${k.id}: ${k.what}`));
  return lines.join("\n");
}

/** Failures that are not open elsewhere, per target. */
export function unexpectedFailures(r: CampaignResult): number {
  return TARGET_NAMES.reduce((a, t) => a + FAILURES.reduce((b, o) => b + r.tallies[t].outcomes[o], 0), 0);
}
