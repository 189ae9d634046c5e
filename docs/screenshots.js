// The README's MLflow screenshots, from a real sweep in a real MLflow UI (headless Chromium).
//   python -m experiments.run -m model=classic,d2l optim=sgd,adam runs_dir=/tmp/shot
//   mlflow ui --backend-store-uri sqlite:////tmp/shot/mlflow.db --port 5056 &
//   npm i playwright-core && node docs/screenshots.js http://127.0.0.1:5056 <parent run id> docs
// (Debian's chromium at /usr/bin/chromium; playwright-core downloads no browser of its own.)
const { chromium } = require('playwright-core');
(async () => {
  const [base, parent, outdir] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1500, height: 1150 } });
  const closeAssistant = async () => {
    const close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]');
    if (await close.count()) { await close.first().click(); await page.waitForTimeout(500); }
  };
  // The runs page in chart view, the sweep expanded: each child's final metrics as labelled bars.
  await page.goto(`${base}/#/experiments/1/runs?workflowType=machine_learning&compareRunsMode=CHART`);
  await page.waitForTimeout(6000);
  await closeAssistant();
  await page.locator('button[data-component-id*="runnamecellrenderer"]').first().click();
  await page.waitForTimeout(2000);
  await page.getByPlaceholder('Search metric charts').fill('acc');
  await page.waitForTimeout(3000);
  await page.screenshot({ path: `${outdir}/mlflow-compare-runs.png` });
  // The sweep's own page: its description is the summary.
  await page.goto(`${base}/#/experiments/1/runs/${parent}?workflowType=machine_learning`);
  await page.waitForTimeout(6000);
  await closeAssistant();
  const more = page.getByText('Show more', { exact: true });
  if (await more.count()) { await more.first().click(); await page.waitForTimeout(1000); }
  const desc = page.getByText('Description', { exact: true }).first();
  await desc.evaluate(e => e.scrollIntoView({ block: 'start' }));
  await page.waitForTimeout(1000);
  await page.screenshot({ path: `${outdir}/mlflow-sweep-page.png` });
  await browser.close();
})();
