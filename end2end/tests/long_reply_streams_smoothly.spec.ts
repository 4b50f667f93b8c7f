// A 20 KB reply streamed in 2,000 deltas: the main-thread work per delta must not grow with
// the reply's length (it did when every delta re-rendered the whole reply). A measurement:
// main-thread time per KB received, early in the reply vs late, from Chromium's own
// counters; the figures go to ../target/bench/widget-stream.json. The test asserts that
// the reply completed and rendered, and only a generous bound on the late/early ratio.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, expect } from './fixtures/widget_page';

const SECTION = [
  '## Step',
  '',
  'Plants take in **carbon dioxide** and water, and with `light` they make sugar.',
  '',
  '- chlorophyll absorbs light',
  '- water is split, oxygen is released',
  '',
  '```text',
  '6 CO2 + 6 H2O -> C6H12O6 + 6 O2',
  '```',
  '',
].join('\n');
const DELTAS = 2_000;
const END = 'THE END.';

interface Sample {
  ms: number;
  chars: number;
  /** Headings shown in the reply while it streams (kept blocks plus the open tail). */
  headings: number;
  busy: boolean;
  /** Chromium's cumulative main-thread time: all tasks, script, style and layout. */
  taskMs: number;
  scriptMs: number;
  styleMs: number;
  layoutMs: number;
}

test('a 20 KB reply in 2,000 deltas streams without per-delta work growing (measured)', async ({ widget, upstream, page, context }) => {
  test.setTimeout(120_000);
  let reply = '';
  for (let i = 1; reply.length < 20_000; i++) reply += SECTION.replace('Step', `Step ${i}`);
  reply = reply.slice(0, 20_000 - END.length - 1) + '\n' + END;
  expect(reply.length).toBe(20_000);
  await upstream.setReply(reply);
  await upstream.setChunks(DELTAS);
  await upstream.setChunkDelay(2);
  await widget.openSignedIn();
  // Replies over 8,000 characters cannot be sent back upstream: a fresh conversation.
  await widget.newConversation.click();

  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const counters = async () => {
    const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
    const ms = (name: string) => 1000 * (metrics.find((m) => m.name === name)?.value ?? 0);
    return {
      taskMs: ms('TaskDuration'),
      scriptMs: ms('ScriptDuration'),
      styleMs: ms('RecalcStyleDuration'),
      layoutMs: ms('LayoutDuration'),
    };
  };
  // Long tasks (over 50 ms) while the reply streams: what would make the page stall.
  await page.evaluate(() => {
    const w = window as unknown as { __longTasks: number[] };
    w.__longTasks = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => w.__longTasks.push(e.duration))).observe({ type: 'longtask', buffered: false });
  });

  const samples: Sample[] = [];
  const t0 = Date.now();
  await widget.sendMessage('Explain photosynthesis step by step');
  for (;;) {
    // Straight DOM calls, lighter than a locator, so sampling costs little main-thread time.
    const [chars, busy, headings] = await page.evaluate(() => {
      const replies = document.querySelector('classchat-widget')!.shadowRoot!.querySelectorAll('[data-role="assistant"]');
      const last = replies[replies.length - 1];
      return [last?.textContent?.length ?? 0, last?.getAttribute('aria-busy') === 'true', last?.querySelectorAll('h4').length ?? 0] as const;
    });
    samples.push({ ms: Date.now() - t0, chars, busy, headings, ...(await counters()) });
    if (!busy && chars > 0) break;
    if (Date.now() - t0 > 100_000) break;
    await page.waitForTimeout(50); // the sampling interval, not a wait for a condition
  }
  await widget.waitForReplyDone();
  await expect(widget.lastReply()).toContainText(END);
  // While it streamed, the finished sections stayed on screen (kept, not re-rendered).
  const mid = samples.find((s) => s.busy && s.chars > 10_000);
  expect(mid, 'a sample half-way through the stream').toBeDefined();
  expect(mid!.headings, 'sections received so far are shown while streaming').toBeGreaterThanOrEqual(Math.floor(mid!.chars / SECTION.length) - 1);
  // Rendered as Markdown, every section (the whole reply is one parse after `done`).
  const headings = reply.match(/^##( |$)/gm)!.length;
  await expect(widget.lastReply().locator('h4')).toHaveCount(headings);

  // Main-thread ms per KB of text received, between two fractions of the reply.
  const final = samples[samples.length - 1].chars;
  const at = (f: number) => samples.find((s) => s.chars >= f * final) ?? samples[samples.length - 1];
  const perKb = (a: number, b: number, k: keyof Sample = 'taskMs') => {
    const [x, y] = [at(a), at(b)];
    return Math.round((10 * (y[k] - x[k])) / Math.max(1, (y.chars - x.chars) / 1024)) / 10;
  };
  const early = perKb(0.1, 0.3);
  const late = perKb(0.7, 0.9);
  const parts = (a: number, b: number) => ({
    script: perKb(a, b, 'scriptMs'),
    style: perKb(a, b, 'styleMs'),
    layout: perKb(a, b, 'layoutMs'),
  });
  const longTasks = await page.evaluate(() => (window as unknown as { __longTasks: number[] }).__longTasks);
  const streamed = samples.filter((s) => s.chars > 0);
  const result = {
    reply_chars: reply.length,
    deltas: DELTAS,
    stream_ms: streamed[streamed.length - 1].ms - streamed[0].ms,
    main_thread_ms_total: samples[samples.length - 1].taskMs - samples[0].taskMs,
    main_thread_ms_per_kb_early: early,
    main_thread_ms_per_kb_late: late,
    late_over_early: Math.round((100 * late) / early) / 100,
    per_kb_early_parts: parts(0.1, 0.3),
    per_kb_late_parts: parts(0.7, 0.9),
    long_tasks: longTasks.length,
    longest_task_ms: Math.max(0, ...longTasks),
    samples: samples.length,
  };
  console.log(`20 KB in ${DELTAS} deltas: ${JSON.stringify(result)}`);
  // Generous: a noisy shared machine. Work that grew with the reply would make late deltas
  // cost several times the early ones.
  expect(result.late_over_early, 'late deltas cost about what early ones do').toBeLessThan(5);
  const out = path.resolve(__dirname, '../../target/bench');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'widget-stream.json'), JSON.stringify({ ...result, all_samples: samples }, null, 2));
});
