// SPDX-License-Identifier: MIT
// browser_check.js - drive headless chromium over a report, print what a user saw.
//
// Usage: node browser_check.js JOB.json   (playwright-core found through NODE_PATH)
// JOB: {"chromium": path, "profile": dir, "pages": [{"url", "graph": "svg"|"html",
//       "svg": file name of the graph inside index.html, "target": text, "query": text,
//       "shot": png path, "shot_after": png path}]}
// For each page: load it (no request may leave file://), find the graph (the page
// itself, or the <object> frame of index.html), wait for its script, record every
// box's geometry before and after clicking the widest box whose label contains
// `target`, press Escape and record again, then type `query` in the search field
// and record the highlighted boxes and the matched text. Prints one JSON document.
"use strict";
const fs = require("fs");
const { chromium } = require("playwright-core");

function boxesIn() {
  const out = [];
  for (const g of document.querySelectorAll("#frames > g")) {
    const r = g.querySelector("rect");
    out.push({
      o: +g.getAttribute("data-o"), b: +g.getAttribute("data-b"), l: +g.getAttribute("data-l"),
      x: +r.getAttribute("x"), w: +r.getAttribute("width"),
      label: g.querySelector("title").textContent.split("\n")[0],
      hidden: getComputedStyle(g).display === "none",
      hit: g.classList.contains("hit"),
      fill: getComputedStyle(r).fill,
    });
  }
  return out;
}

async function graphFrame(page, job) {
  if (job.graph === "svg") return page.mainFrame();
  for (let i = 0; i < 100; i++) {
    const f = page.frames().find((fr) => fr.url().endsWith("/" + job.svg));
    if (f) return f;
    await page.waitForTimeout(50);
  }
  throw new Error("no frame for " + job.svg);
}

async function one(ctx, job) {
  const page = await ctx.newPage();
  const result = { url: job.url, errors: [], requests: [] };
  page.on("pageerror", (e) => result.errors.push(String(e)));
  page.on("request", (r) => { if (!r.url().startsWith("file://")) result.requests.push(r.url()); });
  await page.goto(job.url);
  const frame = await graphFrame(page, job);
  await frame.waitForFunction(() => document.documentElement.getAttribute("data-ready") === "1",
                              null, { timeout: 15000 });
  if (job.shot) await page.screenshot({ path: job.shot });
  result.first_screen = await page.evaluate(() => document.body ? document.body.innerText.slice(0, 4000) : "");
  result.before = await frame.evaluate(boxesIn);
  // The widest box whose label has the target text.
  let best = -1;
  result.before.forEach((b, i) => {
    if (b.l > 0 && b.label.includes(job.target) && (best < 0 || b.w > result.before[best].w)) best = i;
  });
  result.target = best;
  if (best >= 0) {
    await frame.locator("#frames > g").nth(best).click();
    result.zoomed = await frame.evaluate(boxesIn);
    result.details = await frame.evaluate(() => document.getElementById("details").textContent);
    await frame.locator("#frames > g").nth(best).press("Escape");
    result.reset = await frame.evaluate(boxesIn);
  }
  await frame.locator("#frames > g").first().press("/");
  result.search_focused = await frame.evaluate(() => document.activeElement &&
                                               document.activeElement.id === "search");
  await frame.locator("#search").fill(job.query);
  result.searched = await frame.evaluate(boxesIn);
  result.matched_text = await frame.evaluate(() => document.getElementById("matched").textContent);
  result.matched_bytes = await frame.evaluate(() =>
    document.documentElement.getAttribute("data-matched"));
  if (job.shot_after) await page.screenshot({ path: job.shot_after });
  await page.close();
  return result;
}

// The same graph with scripts off: what is drawn, and no search bar.
async function scriptsOff(_, job) {
  const ctx = await chromium.launchPersistentContext(job.profile + "-nojs", {
    executablePath: job.chromium, headless: true, viewport: { width: 1280, height: 900 },
    javaScriptEnabled: false,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await ctx.newPage();
    await page.goto(job.static_url);
    if (job.static_shot) await page.screenshot({ path: job.static_shot });
    return await page.evaluate(() => ({
      ready: document.documentElement.getAttribute("data-ready"),
      search: !!document.getElementById("search"),
      hint: (document.getElementById("hint") || {}).textContent || "",
      texts: [...document.querySelectorAll("#frames > g")].map((g) => {
        const t = g.querySelector("text");
        const r = t ? t.getBoundingClientRect() : null;
        return t ? { text: t.textContent, top: r.top, visible: r.width > 0 } : null;
      }).filter((x) => x),
    }));
  } finally {
    await ctx.close();
  }
}

(async () => {
  const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const ctx = await chromium.launchPersistentContext(job.profile, {
    executablePath: job.chromium, headless: true, viewport: { width: 1280, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const results = [];
  try {
    for (const p of job.pages) results.push(await one(ctx, p));
    if (job.static_url) results.push(await scriptsOff(ctx.browser() || ctx, job));
  } finally {
    await ctx.close();
  }
  process.stdout.write(JSON.stringify(results));
})().catch((e) => { process.stderr.write(String(e.stack || e) + "\n"); process.exit(1); });
