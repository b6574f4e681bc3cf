// The demo journey in a real browser (headless Chromium, driven by
// playwright-core): log in, register, launch with the link generator,
// watch the live status page reach the Jupyter link, open it, delete.
// Fails on any step that does not happen and on any console error.
//
//   node scripts/browser/journey.js path/to/stackbinder [chromium]
"use strict";
const { spawn } = require("node:child_process");
const readline = require("node:readline");
const { chromium } = require("playwright-core");

const binary = process.argv[2] || "target/debug/stackbinder";
const chromiumPath = process.argv[3] || "/usr/bin/chromium";

function startDemo() {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.STACKBINDER_CONFIG;
    const demo = spawn(binary, ["demo", "--bind", "127.0.0.1:0"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const found = {};
    readline.createInterface({ input: demo.stdout }).on("line", (line) => {
      const open = line.match(/^\s*open:\s*(\S+)/);
      const link = line.match(/^\s*registration link:\s*(\S+)/);
      if (open) found.base = open[1].replace(/\/$/, "");
      if (link) found.link = link[1];
      if (found.base && found.link) resolve({ demo, ...found });
    });
    demo.on("exit", (code) => reject(new Error(`the demo exited with ${code}`)));
    setTimeout(() => reject(new Error("the demo printed no URL within 60 s")), 60000);
  });
}

async function main() {
  const { demo, base, link } = await startDemo();
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 420, height: 900 } });
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

    await page.goto(`${base}/`);
    await page.click("text=Log in to the demo");
    await page.fill("#login", "grace");
    await page.click("button[type=submit]");
    await page.goto(link);
    await page.click("text=Register");

    await page.fill("#giturl", "https://github.com/binder-examples/conda");
    await page.fill("#urlpath", "lab/tree/index.ipynb");
    const share = await page.inputValue("#share-link");
    if (!share.includes("giturl=https%3A%2F%2Fgithub.com%2Fbinder-examples%2Fconda")) {
      throw new Error(`the link generator shows ${share}`);
    }
    await page.click("#launch-form button[type=submit]");
    await page.waitForURL("**/VM_status");
    // Only the live updates (server-sent events) can reveal the link.
    await page.waitForSelector("#jupyter:not([hidden])", { timeout: 60000 });
    const href = await page.getAttribute("#jupyter-link", "href");
    if (!/^http:\/\/127\.[0-9.]+:\d+\/lab\/tree\/index\.ipynb\?token=/.test(href)) {
      throw new Error(`unexpected Jupyter link ${href}`);
    }
    const jupyter = await browser.newPage();
    await jupyter.goto(href);
    if (!(await jupyter.textContent("h1")).includes("Jupyter")) throw new Error("no Jupyter page");

    await page.click("#delete-link");
    await page.click("text=Delete it");
    await page.waitForFunction(
      () => document.getElementById("headline").textContent.includes("deleted"),
      null, { timeout: 30000 });
    if (errors.length) throw new Error(`console errors: ${JSON.stringify(errors)}`);
    console.log("browser journey: login, register, launch, live status, Jupyter, delete: OK");
  } finally {
    await browser.close();
    demo.kill("SIGTERM");
  }
}

main().catch((e) => { console.error(`browser journey FAILED: ${e.stack || e}`); process.exit(1); });
