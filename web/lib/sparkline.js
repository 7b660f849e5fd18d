// A tiny hand-drawn line chart per table row: uPlot per row would cost far more.

/** Draws `prices` over `times` into `canvas` in `color`, scaled to fill it. */
export function drawSparkline(canvas, { times, prices }, color) {
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  // Hidden (e.g. the column is dropped at phone width): nothing to draw.
  if (!width || !height) return;
  const ratio = devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (prices.length < 2) return;

  const t0 = times[0];
  const tSpan = times.at(-1) - t0 || 1;
  let low = Infinity;
  let high = -Infinity;
  for (const p of prices) {
    low = Math.min(low, p);
    high = Math.max(high, p);
  }
  const pSpan = high - low || 1;
  const pad = 2;
  const x = (t) => ((t - t0) / tSpan) * width;
  const y = (p) => pad + (1 - (p - low) / pSpan) * (height - 2 * pad);

  ctx.beginPath();
  ctx.moveTo(x(times[0]), y(prices[0]));
  for (let i = 1; i < prices.length; i++) ctx.lineTo(x(times[i]), y(prices[i]));
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.25;
  ctx.lineJoin = "round";
  ctx.stroke();
}
