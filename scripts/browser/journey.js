// The demo journey in a real browser (headless Chromium, driven by
// playwright-core): log in, register, launch with the link generator,
// watch the live status page reach the Jupyter link, open Jupyter through
// stackbinder's proxy at /user/<login>/, delete. Fails on any step that
// does not happen and on any console error.
//
// With TEST_JUPYTER_PYTHON (a python with jupyterlab and ipykernel; CI
// must set it) the simulated VM runs a real JupyterLab
// (simulator.jupyter_command): the journey opens a notebook, runs 1+1,
// sees 2, and keeps a screenshot at target/journey/jupyterlab.png.
// Without it the VM serves stackbinder's Jupyter stand-in, whose page
// shows the echo of a WebSocket through the proxy.
//
//   node scripts/browser/journey.js path/to/stackbinder [chromium]
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const { chromium } = require("playwright-core");

const binary = process.argv[2] || "target/debug/stackbinder";
const chromiumPath = process.argv[3] || "/usr/bin/chromium";
const jupyterPython = process.env.TEST_JUPYTER_PYTHON || "";
const screenshot = path.resolve("target/journey/jupyterlab.png");
const login = "grace";

function startDemo() {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.STACKBINDER_CONFIG;
    if (jupyterPython) {
      // A TOML array, which JSON's array of plain strings also is.
      env.STACKBINDER_SIMULATOR__JUPYTER_COMMAND = JSON.stringify([jupyterPython, "-m", "jupyterlab"]);
    }
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

function watchErrors(page, errors, name) {
  page.on("pageerror", (e) => errors.push(`${name}: ${e}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`${name}: ${m.text()}`); });
}

// A notebook in JupyterLab: a new one from the launcher, 1+1 in its first
// cell, and 2 in its output.
async function runOnePlusOne(jupyter) {
  // A cell run before the notebook is connected to its kernel is not run
  // at all: wait for the kernel's first answer on its WebSocket.
  const connected = new Promise((resolve, reject) => {
    jupyter.on("websocket", (ws) => {
      if (!ws.url().includes("/api/kernels/")) return;
      ws.on("framereceived", (frame) => {
        if (String(frame.payload).includes("kernel_info_reply")) resolve();
      });
    });
    setTimeout(() => reject(new Error("no kernel answered on a WebSocket within 180 s")), 180000);
  });
  const notebookCard = '.jp-LauncherCard[data-category="Notebook"]';
  await jupyter.waitForSelector(notebookCard, { timeout: 120000 });
  await jupyter.click(notebookCard);
  const editor = jupyter.locator(".jp-Notebook .jp-Cell .cm-content").first();
  await editor.waitFor({ timeout: 60000 });
  await connected;
  await editor.click();
  await jupyter.keyboard.type("1+1");
  await jupyter.keyboard.press("Shift+Enter");
  await jupyter.waitForFunction(
    () => [...document.querySelectorAll(".jp-OutputArea-output")]
      .some((o) => o.textContent.trim() === "2"),
    null, { timeout: 120000 });
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await jupyter.screenshot({ path: screenshot });
  console.log(`browser journey: JupyterLab screenshot at ${screenshot}`);
}

// The stand-in: its page, and the echo of its WebSocket.
async function seeTheStandIn(jupyter) {
  if (!(await jupyter.textContent("h1")).includes("Jupyter")) throw new Error("no Jupyter page");
  await jupyter.waitForFunction(
    () => document.getElementById("echo").textContent === "WebSocket echo: 1+1",
    null, { timeout: 30000 });
}

async function main() {
  if (!jupyterPython && process.env.CI === "true") {
    throw new Error("CI must set TEST_JUPYTER_PYTHON to a python with jupyterlab and ipykernel");
  }
  const { demo, base, link } = await startDemo();
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  try {
    // One context: its cookies are the user's session for the proxy too.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.setViewportSize({ width: 420, height: 900 });
    watchErrors(page, errors, "stackbinder");

    await page.goto(`${base}/`);
    await page.click("text=Log in to the demo");
    await page.fill("#login", login);
    await page.click("button[type=submit]");
    await page.goto(link);
    await page.click("text=Register");

    await page.fill("#giturl", "https://github.com/binder-examples/conda");
    await page.fill("#urlpath", "lab");
    const share = await page.inputValue("#share-link");
    if (!share.includes("giturl=https%3A%2F%2Fgithub.com%2Fbinder-examples%2Fconda")) {
      throw new Error(`the link generator shows ${share}`);
    }
    await page.click("#launch-form button[type=submit]");
    await page.waitForURL("**/VM_status");
    // Only the live updates (server-sent events) can reveal the link.
    await page.waitForSelector("#jupyter:not([hidden])", { timeout: jupyterPython ? 240000 : 60000 });
    const href = await page.getAttribute("#jupyter-link", "href");
    // Through stackbinder's proxy, on the demo's own address.
    if (!href.startsWith(`${base}/user/${login}/lab?token=`)) {
      throw new Error(`unexpected Jupyter link ${href}`);
    }
    // The same browser: the proxy lets the VM's owner in by their session.
    const jupyter = await context.newPage();
    await jupyter.setViewportSize({ width: 1280, height: 800 });
    watchErrors(jupyter, errors, "jupyter");
    await jupyter.goto(href);
    try {
      if (jupyterPython) {
        await runOnePlusOne(jupyter);
      } else {
        await seeTheStandIn(jupyter);
      }
    } catch (e) {
      // What the page showed when it went wrong, for whoever reads the log.
      const failed = path.resolve("target/journey/jupyter-failure.png");
      fs.mkdirSync(path.dirname(failed), { recursive: true });
      await jupyter.screenshot({ path: failed }).catch(() => {});
      console.error(`browser journey: the Jupyter page as it was at the failure: ${failed}`);
      throw e;
    }
    // Closed before the delete, so that its lost connection is no error.
    await jupyter.close();

    await page.click("#delete-link");
    await page.click("text=Delete it");
    await page.waitForFunction(
      () => document.getElementById("headline").textContent.includes("deleted"),
      null, { timeout: 30000 });
    if (errors.length) throw new Error(`console errors: ${JSON.stringify(errors)}`);
    const opened = jupyterPython ? "JupyterLab ran 1+1" : "the Jupyter stand-in echoed a WebSocket";
    console.log(`browser journey: login, register, launch, live status, proxy (${opened}), delete: OK`);
  } finally {
    await browser.close();
    demo.kill("SIGTERM");
  }
}

main().catch((e) => { console.error(`browser journey FAILED: ${e.stack || e}`); process.exit(1); });
