// End-to-end driver: open the built web sample in headless Chromium, run requests against the loaded models.
//   node e2e/run.mjs <page url> <requests.json> <results.json>
// Used by tests/test_web_e2e.py (which builds the page, serves it and compares with the Python reference).
// Chromium: Debian's /usr/bin/chromium (or $CHROMIUM), driven by playwright-core (no browser download).
import { readFileSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [url, requestsPath, outPath] = process.argv.slice(2);
const requests = JSON.parse(readFileSync(requestsPath, 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const log = [];
try {
  const page = await browser.newPage();
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => log.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(url);
  await page.waitForFunction(() => window.projdeploy && window.projdeploy.ready, null, { timeout: 120000 });
  const results = await page.evaluate(async (req) => {
    const s = window.projdeploy;
    const out = { errors: s.errors, selfTests: s.selfTests, digits: [], pycode: [], canvas: null };
    if (s.digits) {
      for (const img of req.digits?.images ?? []) out.digits.push(await s.digits.classifyImage(img.pixels, img.maxValue));
    }
    if (s.pycode) {
      for (const p of req.pycode?.prompts ?? []) {
        const completion = await s.pycode.complete(p.text, p.options);
        const pieces = [];
        for await (const piece of s.pycode.stream(p.text, p.options)) pieces.push(piece);
        out.pycode.push({ ...completion, pieces });
      }
      // cancellation: leave a long stream after its first piece, then the model still answers
      const long = { maxNewTokens: 200, stopAtEos: false };
      let first = null;
      for await (const piece of s.pycode.stream('def ', long)) { first = piece; break; }
      const ctrl = new AbortController();
      let abortedPieces = 0;
      for await (const piece of s.pycode.stream('def ', long, { signal: ctrl.signal })) { ctrl.abort(); abortedPieces += piece.length; }
      out.cancel = { first, abortedPieces, after: await s.pycode.complete('def main(', { maxNewTokens: 4 }) };
    }
    return out;
  }, requests);
  if (requests.draw && !results.errors.digits) {
    // Draw a stroke with the mouse like a user and read the prediction shown on the page.
    const box = await page.locator('#pad').boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.85, { steps: 12 });
    await page.mouse.up();
    await page.waitForFunction(() => document.getElementById('prediction').textContent !== '-', null, { timeout: 30000 });
    results.canvas = await page.locator('#prediction').textContent();
  }
  results.log = log;
  writeFileSync(outPath, JSON.stringify(results));
} finally {
  await browser.close();
}
